# How each Debian 12 dependency is found (see README "Dependencies" for why each is here).
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)            # CMake's own FindProtobuf: Debian ships no config file
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(hwy CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)            # libcrypto: HMAC-SHA256 user keys (core/user_key.h)
find_package(Eigen3 CONFIG REQUIRED)     # pipeline: the coupon cold-start ridge regression
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# cpp-httplib (GET /metrics): Debian ships a header plus libcpp-httplib.so, built with OpenSSL,
# zlib and brotli support; pkg-config gives the library and the matching -D flags, which
# change the header's class layouts.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# The shared RocksDB keeps link times short; the static archive is 33 MB.
if(TARGET RocksDB::rocksdb-shared)
  set(COUPOND_ROCKSDB RocksDB::rocksdb-shared)
else()
  set(COUPOND_ROCKSDB RocksDB::rocksdb)
endif()

set(COUPOND_GRPC_PROTO_DIR "/usr/share/grpc-proto" CACHE PATH
    "Directory holding the standard grpc/health/v1/health.proto (Debian package grpc-proto)")
