LIB_PKGS += libcurl jansson
