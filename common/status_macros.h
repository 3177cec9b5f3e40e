#ifndef COUPOND_COMMON_STATUS_MACROS_H_
#define COUPOND_COMMON_STATUS_MACROS_H_

// Status propagation helpers. Debian's Abseil (20220623) has no ABSL_RETURN_IF_ERROR or
// ASSIGN_OR_RETURN, so coupond defines its own, with the usual semantics.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COUPOND_STATUS_CONCAT_INNER_(a, b) a##b
#define COUPOND_STATUS_CONCAT_(a, b) COUPOND_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define COUPOND_RETURN_IF_ERROR(expr) \
  COUPOND_RETURN_IF_ERROR_IMPL_(COUPOND_STATUS_CONCAT_(coupond_status_, __LINE__), expr)
#define COUPOND_RETURN_IF_ERROR_IMPL_(status, expr) \
  do {                                              \
    ::absl::Status status = (expr);                 \
    if (!status.ok()) return status;                \
  } while (false)

// `lhs` = the value of `rexpr` (an absl::StatusOr<T>), or returns its status if not OK.
#define COUPOND_ASSIGN_OR_RETURN(lhs, rexpr)                                         \
  COUPOND_ASSIGN_OR_RETURN_IMPL_(COUPOND_STATUS_CONCAT_(coupond_statusor_, __LINE__), \
                                 lhs, rexpr)
#define COUPOND_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = *std::move(statusor)

#endif  // COUPOND_COMMON_STATUS_MACROS_H_
