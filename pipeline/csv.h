#ifndef COUPOND_PIPELINE_CSV_H_
#define COUPOND_PIPELINE_CSV_H_

// A streaming RFC 4180 CSV reader for the offline pipeline.
//
// Why our own: Debian 12 offers libcsv-dev (C, callback-driven, no record line numbers, no
// header handling) and libfccp-dev (header-only, throws exceptions, spawns a reader thread).
// Neither gives the physical line where a record starts, which every quarantine entry and
// error message needs, and an exception-free interface is a house rule. The grammar is
// small; this reader is ~300 lines and tested quirk by quirk in tests/csv_test.cc.
//
// What it accepts:
//   - fields separated by `delimiter` (default ','), records ended by LF or CRLF;
//   - a UTF-8 byte-order mark at the very start of the input (skipped);
//   - quoted fields: "a,b" holds a comma, "say ""hi""" holds doubled quotes, and a quoted
//     field may span lines (embedded LF or CRLF are kept as they are);
//   - blank lines (no bytes between two line ends) are skipped; they hold no data;
//   - ragged records: each record has as many fields as it has; the caller decides what a
//     wrong width means (the ingest quarantines it).
// What it rejects, per record (the reader stays usable and continues at the next record):
//   - a quote inside an unquoted field, or characters after a closing quote ("ab"c);
//   - a quoted field still open at the end of the input;
//   - a record longer than `max_record_bytes`.
//
// Missing values: a field is *missing* when it is empty (quoted or not) or, when unquoted,
// equals one of `null_markers` ("null", "NULL" by default). A quoted "null" is the
// four-letter string. Fields past the end of a short record are missing too.
//
// Memory: one record at a time (its raw bytes and its unescaped fields), plus a 64 KiB read
// buffer. Not thread-safe; one reader per file.

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace coupond::pipeline {

struct CsvOptions {
  // Field separator. Default ','.
  char delimiter = ',';
  // The first record is a header naming the columns. Default true.
  bool has_header = true;
  // Header lookups ignore ASCII case ("User_ID" finds "user_id"). Default true.
  bool case_insensitive_header = true;
  // Unquoted field texts that mean "no value" (in addition to the empty field).
  // Default {"null", "NULL"}.
  std::vector<std::string> null_markers = {"null", "NULL"};
  // A record (its raw bytes) longer than this is malformed. Default 1 MiB.
  size_t max_record_bytes = size_t{1} << 20;
};

// One record as read. Views returned by its accessors stay valid until the next
// CsvReader::Next() call.
class CsvRecord {
 public:
  // The physical (1-based) line of the input where the record starts.
  size_t line() const { return line_; }
  // The record's bytes as they appear in the input, without the final line end (a record
  // with embedded newlines contains them). For quarantine files.
  absl::string_view raw() const { return raw_; }
  // Empty when well-formed; otherwise why the record could not be parsed (its fields are
  // then unreliable and should not be used).
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

  size_t size() const { return ends_.size(); }
  // The unescaped text of field `i`, or nullopt when the field is missing (see above).
  std::optional<absl::string_view> Get(size_t i) const;
  bool IsMissing(size_t i) const { return !Get(i).has_value(); }
  // The unescaped text of field `i` whatever it is ("" past the end).
  absl::string_view Text(size_t i) const;

 private:
  friend class CsvReader;
  void Clear();

  size_t line_ = 0;
  std::string raw_;
  std::string error_;
  std::string values_;            // unescaped fields, back to back
  std::vector<size_t> ends_;      // end offset of each field in values_
  std::vector<bool> quoted_;      // whether each field was quoted
  const std::vector<std::string>* null_markers_ = nullptr;
};

class CsvReader {
 public:
  // Opens `path`. NotFound when it cannot be opened. With has_header, reads the header:
  // InvalidArgument "path:line: ..." if it is malformed or absent (an empty file).
  static absl::StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path,
                                                         const CsvOptions& options = {});
  // Reads from `input`, naming it `name` in messages (tests, in-memory data).
  static absl::StatusOr<std::unique_ptr<CsvReader>> FromStream(
      std::unique_ptr<std::istream> input, const std::string& name,
      const CsvOptions& options = {});

  // Advances to the next record: true when there is one (see record(); it may be
  // malformed, check record().ok()), false at the end of the input. DataLoss on a read error.
  absl::StatusOr<bool> Next();
  const CsvRecord& record() const { return record_; }

  // The header's column names (empty without has_header).
  const std::vector<std::string>& header() const { return header_; }
  // Index of column `name` in the header, or nullopt.
  std::optional<size_t> FindColumn(absl::string_view name) const;
  // Index of column `name`, or InvalidArgument "<file>:<line>: no column '<name>' in header".
  absl::StatusOr<size_t> RequireColumn(absl::string_view name) const;

  const std::string& name() const { return name_; }
  // Bytes consumed so far and their XXH3-64; after Next() returned false they cover the
  // whole input (the file checksum recorded in ingest reports and model manifests).
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t checksum() const;

  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

 private:
  CsvReader(std::unique_ptr<std::istream> input, std::string name, CsvOptions options);
  absl::Status ReadHeader();
  // -1 at end of input.
  int Peek();
  int Get();
  absl::Status Fill();

  std::unique_ptr<std::istream> input_;
  std::string name_;
  CsvOptions options_;
  std::vector<char> buffer_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  bool io_error_ = false;
  size_t line_ = 1;  // physical line of the next unread byte
  uint64_t bytes_read_ = 0;
  struct HashState;
  std::unique_ptr<HashState> hash_;
  std::vector<std::string> header_;
  size_t header_line_ = 1;
  CsvRecord record_;
};

// Appends `value` to `out` as one CSV field: quoted (with doubled quotes) when it holds
// the delimiter, a quote, CR or LF, or leading/trailing spaces; as is otherwise.
void AppendCsvField(absl::string_view value, std::string* out, char delimiter = ',');

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_CSV_H_
