#ifndef COUPOND_COMMON_ROCKSDB_STATUS_H_
#define COUPOND_COMMON_ROCKSDB_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace coupond::common {

// Converts a RocksDB status to an absl::Status with `context` prefixed to the message.
// NotFound -> NOT_FOUND, Corruption -> DATA_LOSS, IOError/Busy/TimedOut/TryAgain ->
// UNAVAILABLE, InvalidArgument -> INVALID_ARGUMENT, NotSupported -> UNIMPLEMENTED,
// anything else -> INTERNAL.
absl::Status FromRocksDb(const rocksdb::Status& s, absl::string_view context);

}  // namespace coupond::common

#endif  // COUPOND_COMMON_ROCKSDB_STATUS_H_
