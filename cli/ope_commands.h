#ifndef COUPOND_CLI_OPE_COMMANDS_H_
#define COUPOND_CLI_OPE_COMMANDS_H_

// couponctl ope: off-policy evaluation of a decision log (analysis/ope.h). Returns the
// process exit status: 0 success, 1 failure (the reason on stderr), 2 usage error.

#include <string>

namespace coupond::couponctl {

struct OpeFlags {
  std::string decisions;                 // the decision log CSV (analysis/decision_log.h)
  std::string policy = "greedy";         // greedy | epsilon_greedy:E | softmax:T | none | uniform
  std::string reward = "redeemed";       // redeemed | order_value
  std::string missing_outcome = "drop";  // drop | zero
  std::string arm;                       // only decisions of this arm ("": all)
};

int Ope(const OpeFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_OPE_COMMANDS_H_
