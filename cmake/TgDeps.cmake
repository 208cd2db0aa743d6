# Finds every library dependency. A missing one stops configuration with the
# Debian package that provides it (scripts/install-deps installs them all).
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install Debian package 'pkg-config' (scripts/install-deps)")
endif()

# tg_require_pkg(<prefix> <pkg-config module> <debian package>)
# Defines the imported target PkgConfig::<prefix>.
function(tg_require_pkg prefix module debpkg)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "${module} not found: install Debian package '${debpkg}' "
                        "(or run scripts/install-deps)")
  endif()
  message(STATUS "Found ${module} ${${prefix}_VERSION}")
endfunction()

find_package(OpenSSL 3.0 QUIET)
if(NOT OPENSSL_FOUND)
  message(FATAL_ERROR "OpenSSL 3 not found: install Debian package 'libssl-dev' (scripts/install-deps)")
endif()
message(STATUS "Found OpenSSL ${OPENSSL_VERSION}")

tg_require_pkg(LIBP11 libp11 libp11-dev)
tg_require_pkg(P11KIT p11-kit-1 libp11-kit-dev)
tg_require_pkg(PCSC libpcsclite libpcsclite-dev)
tg_require_pkg(LIBUSB libusb-1.0 libusb-1.0-0-dev)
tg_require_pkg(LIBEVENT libevent libevent-dev)
tg_require_pkg(LIBEVENT_OPENSSL libevent_openssl libevent-dev)
tg_require_pkg(LIBEVENT_PTHREADS libevent_pthreads libevent-dev)
tg_require_pkg(JANSSON jansson libjansson-dev)
tg_require_pkg(YAML yaml-0.1 libyaml-dev)
tg_require_pkg(CMOCKA cmocka libcmocka-dev)
tg_require_pkg(YKPIV ykpiv libykpiv-dev)
# examples/curl-client.c (CURLOPT_SSL_CTX_FUNCTION needs the OpenSSL flavour)
tg_require_pkg(CURL libcurl libcurl4-openssl-dev)

# http-parser ships no pkg-config file.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
  message(FATAL_ERROR "http-parser not found: install Debian package 'libhttp-parser-dev' "
                      "(or run scripts/install-deps)")
endif()
add_library(tg_http_parser INTERFACE)
target_include_directories(tg_http_parser INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(tg_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})

# Paths of third-party runtime components the tests drive.
find_library(TG_SOFTHSM2_MODULE NAMES softhsm2 PATH_SUFFIXES softhsm
             PATHS /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib)
find_file(TG_OPENSC_MODULE opensc-pkcs11.so
          PATHS /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib)
find_program(TG_PCSCD pcscd PATHS /usr/sbin)
find_file(TG_VPCD_DRIVER libifdvpcd.so PATHS /usr/lib/pcsc/drivers/serial)
