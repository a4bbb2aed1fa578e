LIB_PKGS += libsodium
