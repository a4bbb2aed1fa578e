# Box side of the hub (hubclient.c, hubclient_feed.c): HTTPS via libcurl, MQTT via libmosquitto.
LIB_PKGS += libcurl libmosquitto
