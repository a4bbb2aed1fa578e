LIB_PKGS += jansson
