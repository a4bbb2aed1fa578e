LIB_PKGS += libsodium jansson
