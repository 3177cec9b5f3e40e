// libFuzzer target over the pipeline's CSV reader (pipeline/csv.h) and log ingest
// (pipeline/ingest.h): the code that reads files a user hands to `couponctl ingest` and
// `pipeline`, byte for byte as they come.
//
// Each input is up to four CSV files and the options to read them with. The exposures file
// is first read by CsvReader alone, then the files are written to a per-process directory
// on tmpfs and read by IngestLogs (with a quarantine file), as couponctl does; then the
// cleaned data is checked with CheckTrainable and split with SplitByCampaignStart.
//
// Input (read front to back; missing bytes read as 0):
//   byte 0   bits 0-1 time format: 0 day_number, 1 iso_date, 2 unix_seconds, 3 day_number
//            bit 2    users.csv present      bit 3 coupons.csv present
//            bit 4    require_known_users    bit 5 ';' as the field delimiter
//            bit 6    no header row for the standalone CsvReader pass
//            bit 7    multi_value_columns empty (default: {"products"})
//   byte 1   redemption_window_days (0..255)
//   byte 2   max_day: 0 = no limit, else this value times 100
//   then     exposures.csv, redemptions.csv, users.csv, coupons.csv, separated by the byte
//            0x1E (ASCII record separator); a missing part is an empty file.
//
// Contracts checked (fuzz_check.h aborts on a violation, so libFuzzer saves the input):
//   CsvReader: Next() never fails on an in-memory stream; record lines never go back; a
//     well-formed record's Get/IsMissing/Text agree; at the end bytes_read() is the input's
//     size and checksum() its XXH3-64.
//   IngestLogs: fails only with a clean InvalidArgument (a file without the required header);
//     for every file rows_read == kept + duplicates + quarantined, one first example per
//     quarantine reason; examples == exposures kept, positives + merged == redemptions kept;
//     the data validates, every day is in [0, max_day]; the quarantine file reads back as
//     CSV with one 5-field row per quarantined row and a known reason in each.
//   CheckTrainable: OK exactly when there is an example and a positive, else
//     FailedPrecondition starting "0 ".
//   SplitByCampaignStart: OK or InvalidArgument; OK partitions the examples into sorted,
//     disjoint train and test sets, both non-empty, the test set exactly the campaigns
//     starting on or after the cutoff.

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "learn/training_data.h"
#include "pipeline/csv.h"
#include "pipeline/ingest.h"
#include "pipeline/logs.h"
#include "xxhash.h"

namespace coupond::fuzz {
namespace {

namespace fs = std::filesystem;
using pipeline::CsvOptions;
using pipeline::CsvReader;
using pipeline::CsvRecord;

constexpr char kFileSeparator = '\x1e';

std::string CsvIngestTempRoot() {
  if (const char* dir = std::getenv("COUPOND_FUZZ_TMPDIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return fs::temp_directory_path(ec).string();
}

std::string& CsvIngestRoot() {
  static std::string* root = new std::string;  // never destroyed: read by the atexit hook
  return *root;
}

void RemoveCsvIngestRoot() {
  std::error_code ec;
  if (!CsvIngestRoot().empty()) fs::remove_all(CsvIngestRoot(), ec);
}

void WriteFileOrDie(const std::string& path, absl::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) Fail("writing a fuzz input file", absl::UnavailableError(path));
}

// The standalone reader pass over one file's bytes.
void CheckReader(absl::string_view bytes, const CsvOptions& options) {
  absl::StatusOr<std::unique_ptr<CsvReader>> reader = CsvReader::FromStream(
      std::make_unique<std::istringstream>(std::string(bytes)), "input.csv", options);
  CheckStatusIn(reader.status(), {absl::StatusCode::kInvalidArgument}, "CsvReader::FromStream");
  if (!reader.ok()) return;
  CsvReader& r = **reader;
  size_t last_line = 0;
  for (;;) {
    absl::StatusOr<bool> more = r.Next();
    CheckStatusIn(more.status(), {}, "CsvReader::Next");
    if (!*more) break;
    const CsvRecord& rec = r.record();
    Check(rec.line() >= 1 && rec.line() >= last_line, "record lines never go back");
    last_line = rec.line();
    if (!rec.ok()) continue;
    for (size_t i = 0; i < rec.size(); ++i) {
      const std::optional<absl::string_view> v = rec.Get(i);
      Check(rec.IsMissing(i) == !v.has_value(), "IsMissing agrees with Get");
      if (v.has_value()) Check(rec.Text(i) == *v, "Text agrees with Get");
    }
    Check(rec.Text(rec.size()).empty() && rec.IsMissing(rec.size()), "past the end is missing");
  }
  Check(r.bytes_read() == bytes.size(), "bytes_read covers the whole input");
  Check(r.checksum() == XXH3_64bits(bytes.data(), bytes.size()), "checksum is the input's XXH3");
}

bool KnownReason(absl::string_view name) {
  for (int k = 0; k <= static_cast<int>(pipeline::QuarantineReason::kOutsideWindow); ++k) {
    if (name == pipeline::QuarantineReasonName(static_cast<pipeline::QuarantineReason>(k))) {
      return true;
    }
  }
  return false;
}

void CheckFileReport(const pipeline::FileReport& f) {
  Check(f.rows_read == f.kept + f.duplicates + f.quarantined_total(),
        "rows_read == kept + duplicates + quarantined");
  Check(f.first_quarantined.size() == f.quarantined.size(), "one first row per reason");
  for (const auto& [reason, n] : f.quarantined) {
    Check(n > 0 && KnownReason(reason), "quarantine counts name known reasons");
    Check(f.first_quarantined.count(reason) == 1, "a first row for each reason");
  }
}

// The quarantine file reads back: one well-formed 5-field row per quarantined row.
void CheckQuarantineFile(const std::string& path, int64_t expected_rows) {
  absl::StatusOr<std::unique_ptr<CsvReader>> reader = CsvReader::Open(path);
  CheckStatusIn(reader.status(), {}, "open the quarantine file");
  Check((*reader)->header().size() == 5, "quarantine header has 5 columns");
  int64_t rows = 0;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next();
    CheckStatusIn(more.status(), {}, "read the quarantine file");
    if (!*more) break;
    const CsvRecord& rec = (*reader)->record();
    Check(rec.ok() && rec.size() == 5, "a quarantine row is well-formed with 5 fields");
    Check(KnownReason(rec.Text(2)), "a quarantine row names a known reason");
    ++rows;
  }
  Check(rows == expected_rows, "the quarantine file holds every quarantined row");
}

void CheckSplit(const learn::TrainingData& data) {
  absl::StatusOr<pipeline::TimeSplit> split = pipeline::SplitByCampaignStart(data, 0.2);
  CheckStatusIn(split.status(), {absl::StatusCode::kInvalidArgument}, "SplitByCampaignStart");
  if (!split.ok()) return;
  Check(!split->train.empty() && !split->test.empty(), "both sides of a split hold examples");
  Check(split->train.size() + split->test.size() == data.examples.size(), "a split keeps every example");
  Check(std::is_sorted(split->train.begin(), split->train.end()) &&
            std::is_sorted(split->test.begin(), split->test.end()),
        "split indices ascending");
  std::vector<int32_t> start(data.campaign_ids.size(), std::numeric_limits<int32_t>::max());
  for (const learn::Example& e : data.examples) start[e.campaign] = std::min(start[e.campaign], e.day);
  std::set<uint32_t> test(split->test.begin(), split->test.end());
  Check(test.size() == split->test.size(), "test indices distinct");
  for (uint32_t i : split->train) {
    Check(test.count(i) == 0, "train and test disjoint");
    Check(start[data.examples[i].campaign] < split->cutoff_day, "train campaigns start before the cutoff");
  }
  for (uint32_t i : split->test) {
    Check(start[data.examples[i].campaign] >= split->cutoff_day, "test campaigns start on or after the cutoff");
  }
}

class CsvIngestHarness {
 public:
  CsvIngestHarness() {
    CsvIngestRoot() = absl::StrCat(CsvIngestTempRoot(), "/coupond-csv-ingest-fuzzer-", getpid());
    RemoveCsvIngestRoot();
    std::atexit([] { RemoveCsvIngestRoot(); });
    std::error_code ec;
    fs::create_directories(CsvIngestRoot(), ec);
    if (ec) Fail("create the fuzz directory", absl::UnavailableError(ec.message()));
  }

  void Run(const uint8_t* data, size_t size) {
    auto byte = [&](size_t i) -> uint8_t { return i < size ? data[i] : 0; };
    const uint8_t flags = byte(0);
    const absl::string_view body =
        size > 3 ? absl::string_view(reinterpret_cast<const char*>(data) + 3, size - 3)
                 : absl::string_view();
    std::vector<absl::string_view> parts = absl::StrSplit(body, kFileSeparator);
    parts.resize(std::max<size_t>(parts.size(), 4));

    pipeline::IngestOptions options;
    switch (flags & 3) {
      case 1: options.time_format = pipeline::TimeFormat::kIsoDate; break;
      case 2: options.time_format = pipeline::TimeFormat::kUnixSeconds; break;
      default: options.time_format = pipeline::TimeFormat::kDayNumber; break;
    }
    options.require_known_users = (flags & 16) != 0;
    if (flags & 32) options.csv.delimiter = ';';
    if (flags & 128) options.multi_value_columns.clear();
    options.redemption_window_days = byte(1);
    if (byte(2) != 0) options.max_day = int64_t{100} * byte(2);

    CsvOptions standalone = options.csv;
    standalone.has_header = (flags & 64) == 0;
    CheckReader(parts[0], standalone);

    const std::string& root = CsvIngestRoot();
    pipeline::LogPaths paths;
    paths.exposures = root + "/exposures.csv";
    paths.redemptions = root + "/redemptions.csv";
    WriteFileOrDie(paths.exposures, parts[0]);
    WriteFileOrDie(paths.redemptions, parts[1]);
    if (flags & 4) {
      paths.users = root + "/users.csv";
      WriteFileOrDie(paths.users, parts[2]);
    }
    if (flags & 8) {
      paths.coupons = root + "/coupons.csv";
      WriteFileOrDie(paths.coupons, parts[3]);
    }
    options.quarantine_path = root + "/quarantine.csv";

    absl::StatusOr<pipeline::IngestResult> result = pipeline::IngestLogs(paths, options);
    CheckStatusIn(result.status(), {absl::StatusCode::kInvalidArgument}, "IngestLogs");
    if (!result.ok()) return;
    const pipeline::IngestReport& report = result->report;
    const learn::TrainingData& d = result->data;
    int64_t quarantined = 0;
    for (const pipeline::FileReport* f :
         {&report.exposures, &report.redemptions, &report.users, &report.coupons}) {
      CheckFileReport(*f);
      quarantined += f->quarantined_total();
    }
    CheckStatusIn(d.Validate(), {}, "TrainingData::Validate");
    Check(report.examples == report.exposures.kept, "examples == kept exposures");
    Check(report.examples == static_cast<int64_t>(d.examples.size()), "examples counted");
    Check(report.positives >= 0 && report.positives <= report.examples, "positives <= examples");
    Check(report.positives + report.redemptions_merged == report.redemptions.kept,
          "each kept redemption makes or joins one positive");
    Check(report.user_features == static_cast<int64_t>(d.user_features.names.size()) &&
              report.coupon_features == static_cast<int64_t>(d.coupon_features.names.size()),
          "feature counts");
    for (const learn::Example& e : d.examples) {
      Check(e.day >= 0 && e.day <= options.max_day, "every day in [0, max_day]");
      Check(e.label == 0.0f || e.label == 1.0f, "labels are 0 or 1");
    }
    CheckQuarantineFile(options.quarantine_path, quarantined);
    (void)report.ToString();

    const absl::Status trainable = pipeline::CheckTrainable(report);
    CheckStatusIn(trainable, {absl::StatusCode::kFailedPrecondition}, "CheckTrainable");
    Check(trainable.ok() == (report.examples > 0 && report.positives > 0),
          "CheckTrainable fails exactly without an example or a positive");
    Check(trainable.ok() || absl::StartsWith(trainable.message(), "0 "),
          "CheckTrainable's message starts with the count");
    if (!d.examples.empty()) CheckSplit(d);
  }
};

}  // namespace
}  // namespace coupond::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: libFuzzer exits from inside its loop; the atexit hook removes the
  // directory.
  static coupond::fuzz::CsvIngestHarness* const harness = new coupond::fuzz::CsvIngestHarness;
  harness->Run(data, size);
  return 0;
}
