#include "pipeline/csv.h"

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "xxhash.h"

namespace coupond::pipeline {
namespace {

constexpr size_t kBufferBytes = size_t{64} << 10;

}  // namespace

// ----------------------------------------------------------------------------- CsvRecord

void CsvRecord::Clear() {
  line_ = 0;
  raw_.clear();
  error_.clear();
  values_.clear();
  ends_.clear();
  quoted_.clear();
}

absl::string_view CsvRecord::Text(size_t i) const {
  if (i >= ends_.size()) return {};
  const size_t begin = i == 0 ? 0 : ends_[i - 1];
  return absl::string_view(values_).substr(begin, ends_[i] - begin);
}

std::optional<absl::string_view> CsvRecord::Get(size_t i) const {
  if (i >= ends_.size()) return std::nullopt;
  const absl::string_view text = Text(i);
  if (text.empty()) return std::nullopt;
  if (!quoted_[i] && null_markers_ != nullptr) {
    for (const std::string& marker : *null_markers_) {
      if (text == marker) return std::nullopt;
    }
  }
  return text;
}

// ----------------------------------------------------------------------------- CsvReader

struct CsvReader::HashState {
  XXH3_state_t* state = XXH3_createState();
  HashState() { XXH3_64bits_reset(state); }
  ~HashState() { XXH3_freeState(state); }
};

CsvReader::CsvReader(std::unique_ptr<std::istream> input, std::string name, CsvOptions options)
    : input_(std::move(input)),
      name_(std::move(name)),
      options_(std::move(options)),
      buffer_(kBufferBytes),
      hash_(std::make_unique<HashState>()) {
  record_.null_markers_ = &options_.null_markers;
}

CsvReader::~CsvReader() = default;

uint64_t CsvReader::checksum() const { return XXH3_64bits_digest(hash_->state); }

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path,
                                                           const CsvOptions& options) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return FromStream(std::move(in), path, options);
}

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::FromStream(
    std::unique_ptr<std::istream> input, const std::string& name, const CsvOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r') {
    return absl::InvalidArgumentError("CsvOptions.delimiter: must not be a quote or line end");
  }
  std::unique_ptr<CsvReader> reader(new CsvReader(std::move(input), name, options));
  COUPOND_RETURN_IF_ERROR(reader->Fill());
  // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
  if (reader->end_ >= 3 && static_cast<unsigned char>(reader->buffer_[0]) == 0xEF &&
      static_cast<unsigned char>(reader->buffer_[1]) == 0xBB &&
      static_cast<unsigned char>(reader->buffer_[2]) == 0xBF) {
    reader->pos_ = 3;
  }
  if (options.has_header) COUPOND_RETURN_IF_ERROR(reader->ReadHeader());
  return reader;
}

absl::Status CsvReader::Fill() {
  pos_ = 0;
  end_ = 0;
  if (eof_) return absl::OkStatus();
  input_->read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  end_ = static_cast<size_t>(input_->gcount());
  if (input_->bad()) {
    io_error_ = true;
    return absl::DataLossError(absl::StrCat("error reading ", name_));
  }
  if (end_ < buffer_.size()) eof_ = true;
  XXH3_64bits_update(hash_->state, buffer_.data(), end_);
  bytes_read_ += end_;
  return absl::OkStatus();
}

int CsvReader::Peek() {
  if (pos_ == end_) {
    if (!Fill().ok() || end_ == 0) return -1;
  }
  return static_cast<unsigned char>(buffer_[pos_]);
}

int CsvReader::Get() {
  const int c = Peek();
  if (c >= 0) {
    ++pos_;
    record_.raw_.push_back(static_cast<char>(c));
  }
  return c;
}

absl::StatusOr<bool> CsvReader::Next() {
  record_.Clear();
  // Skip blank lines: they hold no record.
  for (;;) {
    const int c = Peek();
    if (c < 0) {
      if (io_error_) return absl::DataLossError(absl::StrCat("error reading ", name_));
      return false;
    }
    if (c == '\n') {
      ++pos_;
      ++line_;
      continue;
    }
    if (c == '\r') {
      ++pos_;
      if (Peek() == '\n') {
        ++pos_;
        ++line_;
        continue;
      }
      // A lone CR at the start of a line is data (kept below as the field's first byte).
      record_.raw_.push_back('\r');
      record_.values_.push_back('\r');
    }
    break;
  }
  record_.line_ = line_;

  enum class State { kFieldStart, kUnquoted, kQuoted, kAfterQuote };
  State state = record_.values_.empty() ? State::kFieldStart : State::kUnquoted;
  bool quoted = false;
  auto end_field = [&] {
    record_.ends_.push_back(record_.values_.size());
    record_.quoted_.push_back(quoted);
    quoted = false;
  };
  // Returns true when `c` (already consumed) ends the line: LF, or CR followed by LF or EOF.
  auto line_end = [&](int c) {
    if (c == '\n') return true;
    if (c == '\r') {
      const int next = Peek();
      if (next == '\n') {
        Get();
        return true;
      }
      if (next < 0) return true;
    }
    return false;
  };
  auto fail = [&](std::string why) {
    record_.error_ = std::move(why);
    // Resynchronise at the end of the physical line.
    for (int c = Get(); c >= 0 && c != '\n'; c = Get()) {
    }
  };

  const char delim = options_.delimiter;
  for (;;) {
    if (record_.raw_.size() > options_.max_record_bytes) {
      fail(absl::StrCat("record longer than ", options_.max_record_bytes, " bytes"));
      break;
    }
    const int c = Get();
    if (c < 0) {
      if (io_error_) return absl::DataLossError(absl::StrCat("error reading ", name_));
      if (state == State::kQuoted) {
        record_.error_ = absl::StrCat("quoted field opened on line ", record_.line_,
                                      " is not closed at the end of the input");
        break;
      }
      end_field();
      break;
    }
    bool done = false;
    switch (state) {
      case State::kFieldStart:
      case State::kUnquoted:
        if (c == delim) {
          end_field();
          state = State::kFieldStart;
        } else if (line_end(c)) {
          end_field();
          done = true;
        } else if (c == '"') {
          if (state == State::kFieldStart) {
            quoted = true;
            state = State::kQuoted;
          } else {
            fail(absl::StrCat("column ", record_.ends_.size() + 1,
                              ": quote inside an unquoted field"));
            done = true;
          }
        } else {
          record_.values_.push_back(static_cast<char>(c));
          state = State::kUnquoted;
        }
        break;
      case State::kQuoted:
        if (c == '"') {
          state = State::kAfterQuote;
        } else {
          if (c == '\n') ++line_;
          record_.values_.push_back(static_cast<char>(c));
        }
        break;
      case State::kAfterQuote:
        if (c == '"') {  // a doubled quote stands for one
          record_.values_.push_back('"');
          state = State::kQuoted;
        } else if (c == delim) {
          end_field();
          state = State::kFieldStart;
        } else if (line_end(c)) {
          end_field();
          done = true;
        } else {
          fail(absl::StrCat("column ", record_.ends_.size() + 1,
                            ": unexpected character after a closing quote"));
          done = true;
        }
        break;
    }
    if (done) break;
  }
  // The line that ended the record (if any) is behind us now.
  if (!record_.raw_.empty() && record_.raw_.back() == '\n') {
    ++line_;
    record_.raw_.pop_back();
    if (!record_.raw_.empty() && record_.raw_.back() == '\r') record_.raw_.pop_back();
  } else if (!record_.raw_.empty() && record_.raw_.back() == '\r' && record_.ok() &&
             Peek() < 0) {
    record_.raw_.pop_back();
  }
  return true;
}

absl::Status CsvReader::ReadHeader() {
  COUPOND_ASSIGN_OR_RETURN(const bool has, Next());
  if (!has) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ":1: empty file, expected a header"));
  }
  if (!record_.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ":", record_.line(), ": header: ", record_.error()));
  }
  header_line_ = record_.line();
  for (size_t i = 0; i < record_.size(); ++i) {
    std::string column(absl::StripAsciiWhitespace(record_.Text(i)));
    if (FindColumn(column).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ":", record_.line(), ": column ",
                                                     i + 1, ": duplicate column name '",
                                                     column, "'"));
    }
    header_.push_back(std::move(column));
  }
  return absl::OkStatus();
}

std::optional<size_t> CsvReader::FindColumn(absl::string_view name) const {
  for (size_t i = 0; i < header_.size(); ++i) {
    if (options_.case_insensitive_header ? absl::EqualsIgnoreCase(header_[i], name)
                                         : header_[i] == name) {
      return i;
    }
  }
  return std::nullopt;
}

absl::StatusOr<size_t> CsvReader::RequireColumn(absl::string_view name) const {
  if (std::optional<size_t> i = FindColumn(name)) return *i;
  return absl::InvalidArgumentError(absl::StrCat(name_, ":", header_line_, ": no column '", name, "' in header"));
}

void AppendCsvField(absl::string_view value, std::string* out, char delimiter) {
  const bool needs_quotes =
      !value.empty() &&
      (value.find_first_of(std::string{delimiter, '"', '\r', '\n'}) != absl::string_view::npos ||
       absl::ascii_isspace(static_cast<unsigned char>(value.front())) ||
       absl::ascii_isspace(static_cast<unsigned char>(value.back())));
  if (!needs_quotes) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace coupond::pipeline
