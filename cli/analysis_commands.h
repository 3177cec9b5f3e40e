#ifndef COUPOND_CLI_ANALYSIS_COMMANDS_H_
#define COUPOND_CLI_ANALYSIS_COMMANDS_H_

// couponctl's experiment-analysis commands (analysis/): ab-report and sample-size. Each
// returns the process exit status: 0 success, 1 failure (the reason on stderr), 2 usage
// error.

#include <string>
#include <vector>

namespace coupond::couponctl {

struct AbReportFlags {
  std::string input;  // CSV, one row per unit (REQUIRED)
  std::string arm_column = "arm";
  std::vector<std::string> conversion_columns;  // 0/1 outcomes
  std::vector<std::string> value_columns;       // numeric outcomes
  std::string control;                          // the control arm's label (REQUIRED)
  std::string covariate_column;                 // "" = no CUPED
  double alpha = 0.05;                          // intervals at 1 - alpha
  std::string format = "text";                  // text, markdown, csv
  std::string out;                              // "" = stdout
};

struct SampleSizeFlags {
  // Proportions: baseline_rate and one of relative_lift / absolute_lift (0 = not given).
  double baseline_rate = 0.0;
  double relative_lift = 0.0;
  double absolute_lift = 0.0;
  // Means (instead): sd and delta.
  double sd = 0.0;
  double delta = 0.0;
  double alpha = 0.05;
  double power = 0.8;
  int arms = 2;
};

int AbReportCommand(const AbReportFlags& flags);
int SampleSizeCommand(const SampleSizeFlags& flags);

}  // namespace coupond::couponctl

#endif  // COUPOND_CLI_ANALYSIS_COMMANDS_H_
