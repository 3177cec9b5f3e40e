#ifndef COUPOND_CORE_USER_KEY_H_
#define COUPOND_CORE_USER_KEY_H_

// Pseudonymous user keys: no raw user id at rest (model store, decision log, outcomes,
// exported logs) or in logs, when the operator provides a secret.
//
//   key(id) = "k1:" + hex(first 16 bytes of HMAC-SHA256(secret, id))
//
// Keyed, so that someone holding the store but not the secret cannot test a guessed id
// (an unkeyed hash of a phone number or e-mail address is reversed by enumeration); 128 bits,
// so that collisions among billions of users are out of reach (p ~ n^2 / 2^129). The "k1:"
// prefix marks a key (and its version): data that is already keyed (e.g. logs exported from
// the collector) passes through unchanged, so raw history and keyed exports can be mixed.
// Raw ids must therefore not look like keys. Callers may send a key instead of an id (e.g.
// one an Assign over every user returned).
//
// The same secret must be given to every component: the pipeline (keys the logs' ids before
// training, so the model is published keyed), couponctl publish, and coupond (keys each
// incoming id before looking it up and before logging the decision).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"

namespace coupond::core {

// Thread-safe (immutable).
class UserKeyer {
 public:
  // InvalidArgument when the secret is shorter than 16 bytes. The secret is the operator's
  // and is read from a file at the process edge (edge::ReadSecretFile), never here.
  static absl::StatusOr<UserKeyer> Create(std::string secret);

  // The key of `user_id`; a key ("k1:" + 32 hex digits) is returned unchanged. Internal
  // when libcrypto's HMAC fails (it fails only when it cannot allocate its context): there
  // is no fallback, since a key derived any other way would break pseudonymity or merge
  // users, so callers fail their request or job.
  absl::StatusOr<std::string> Key(absl::string_view user_id) const;

  // Replaces every id of `ids` with its key (keys unchanged). On error (as Key) `ids` may be
  // partly keyed; callers fail their request or job.
  absl::Status KeyAll(std::vector<std::string>* ids) const;

 private:
  explicit UserKeyer(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

// True when `id` has the form of a key.
bool IsUserKey(absl::string_view id);

// Replaces every user id of `model` with its key. InvalidArgument when two users end up
// with the same key (the same user present raw and keyed: the model cannot merge factors).
absl::Status PseudonymiseUsers(const UserKeyer& keyer, ModelData* model);

}  // namespace coupond::core

#endif  // COUPOND_CORE_USER_KEY_H_
