#include "pipeline/factor_files.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace coupond::pipeline {
namespace {

namespace fs = std::filesystem;
constexpr int kFormat = 1;
constexpr int kCouponFixedColumns = 6;  // id, bias, face_value, valid_from, valid_until, stock
constexpr int kUserFixedColumns = 2;    // id, bias

std::string FactorHeader(uint32_t d) {
  std::string h;
  for (uint32_t k = 1; k <= d; ++k) absl::StrAppend(&h, "\tf", k);
  return h;
}

// Where a parse error happened, for messages like "users.tsv:12: column 'bias': ...".
struct Where {
  std::string file;
  size_t line = 0;
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", what));
  }
};

absl::Status ParseFloat(absl::string_view text, const Where& w, absl::string_view column,
                        float* out) {
  if (!absl::SimpleAtof(text, out) || !std::isfinite(*out)) {
    return w.Error(absl::StrCat("column '", column, "': '", text, "' is not a finite number"));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status ParseNumber(absl::string_view text, const Where& w, absl::string_view column,
                         T* out) {
  bool ok;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(text, out) && std::isfinite(*out);
  } else {
    ok = absl::SimpleAtoi(text, out);
  }
  if (!ok) return w.Error(absl::StrCat("column '", column, "': '", text, "' is not valid"));
  return absl::OkStatus();
}

// Calls `on_line` for every content line of `path` (comments, blank lines skipped, CR
// stripped) with its 1-based line number.
absl::Status ForEachLine(const fs::path& path,
                         const std::function<absl::Status(absl::string_view, size_t)>& on_line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view view(line);
    if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
    if (view.empty() || view.front() == '#') continue;
    COUPOND_RETURN_IF_ERROR(on_line(view, number));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return absl::OkStatus();
}

absl::Status ReadMeta(const fs::path& dir, core::ModelData* m) {
  bool have_format = false, have_dimension = false, have_bias = false;
  Where w{"model.tsv"};
  COUPOND_RETURN_IF_ERROR(ForEachLine(dir / "model.tsv", [&](absl::string_view line, size_t n) {
    w.line = n;
    const std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    if (kv.size() != 2) return w.Error("expected 'key<TAB>value'");
    if (kv[0] == "format") {
      int format = 0;
      COUPOND_RETURN_IF_ERROR(ParseNumber(kv[1], w, "format", &format));
      if (format != kFormat) {
        return w.Error(absl::StrCat("format ", format, " is not supported (expected ", kFormat,
                                    ")"));
      }
      have_format = true;
    } else if (kv[0] == "dimension") {
      COUPOND_RETURN_IF_ERROR(ParseNumber(kv[1], w, "dimension", &m->dimension));
      if (m->dimension < 1 || m->dimension > core::kMaxDimension) {
        return w.Error(absl::StrCat("dimension ", m->dimension, " is outside [1, ",
                                    core::kMaxDimension, "]"));
      }
      have_dimension = true;
    } else if (kv[0] == "global_bias") {
      COUPOND_RETURN_IF_ERROR(ParseNumber(kv[1], w, "global_bias", &m->global_bias));
      have_bias = true;
    } else if (kv[0] == "description") {
      m->description = std::string(kv[1]);
    } else {
      return w.Error(absl::StrCat("unknown key '", kv[0], "'"));
    }
    return absl::OkStatus();
  }));
  if (!have_format || !have_dimension || !have_bias) {
    return absl::InvalidArgumentError(
        "model.tsv: 'format', 'dimension' and 'global_bias' are all required");
  }
  return absl::OkStatus();
}

// Reads a row file: a header naming `fixed` columns then f1..fd, and rows of that width.
absl::Status ReadRows(const fs::path& dir, const std::string& file,
                      const std::vector<std::string>& fixed, uint32_t d,
                      const std::function<absl::Status(const std::vector<absl::string_view>&,
                                                       const Where&)>& on_row) {
  const std::string expected_header = absl::StrJoin(fixed, "\t") + FactorHeader(d);
  const size_t width = fixed.size() + d;
  bool header_seen = false;
  Where w{file};
  return ForEachLine(dir / file, [&](absl::string_view line, size_t n) {
    w.line = n;
    if (!header_seen) {
      if (line != expected_header) {
        return w.Error(absl::StrCat("header must be '", expected_header, "' for dimension ", d));
      }
      header_seen = true;
      return absl::OkStatus();
    }
    const std::vector<absl::string_view> cells = absl::StrSplit(line, '\t');
    if (cells.size() != width) {
      return w.Error(absl::StrCat("has ", cells.size(), " columns, expected ", width));
    }
    return on_row(cells, w);
  });
}

absl::Status ParseFactors(const std::vector<absl::string_view>& cells, size_t first,
                          uint32_t d, const Where& w, std::vector<float>* out) {
  for (uint32_t k = 0; k < d; ++k) {
    float v = 0;
    COUPOND_RETURN_IF_ERROR(ParseFloat(cells[first + k], w, absl::StrCat("f", k + 1), &v));
    out->push_back(v);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFactorFiles(const core::ModelData& m, const std::string& dir_name) {
  COUPOND_RETURN_IF_ERROR(core::ValidateModelData(m));
  const fs::path dir(dir_name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir_name, ": ", ec.message()));

  auto write = [&](const std::string& file, auto&& body) -> absl::Status {
    std::ofstream out(dir / file, std::ios::binary | std::ios::trunc);
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", (dir / file).string()));
    body(out);
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("error writing ", (dir / file).string()));
    return absl::OkStatus();
  };
  // %.9g round-trips every float exactly.
  auto factors = [&](std::ostream& out, const std::vector<float>& f, size_t row) {
    for (uint32_t k = 0; k < m.dimension; ++k) out << absl::StrFormat("\t%.9g", f[row * m.dimension + k]);
    out << '\n';
  };
  std::string description = m.description;
  for (char& c : description) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  COUPOND_RETURN_IF_ERROR(write("model.tsv", [&](std::ostream& out) {
    out << "# coupond factor files (see pipeline/factor_files.h)\n"
        << "format\t" << kFormat << "\n"
        << "dimension\t" << m.dimension << "\n"
        << absl::StrFormat("global_bias\t%.17g\n", m.global_bias)
        << "description\t" << description << "\n";
  }));
  COUPOND_RETURN_IF_ERROR(write("users.tsv", [&](std::ostream& out) {
    out << "user_id\tbias" << FactorHeader(m.dimension) << "\n";
    for (size_t i = 0; i < m.num_users(); ++i) {
      out << m.user_ids[i] << absl::StrFormat("\t%.9g", m.user_bias[i]);
      factors(out, m.user_factors, i);
    }
  }));
  return write("coupons.tsv", [&](std::ostream& out) {
    out << "coupon_id\tbias\tface_value\tvalid_from\tvalid_until\tstock"
        << FactorHeader(m.dimension) << "\n";
    for (size_t i = 0; i < m.num_coupons(); ++i) {
      const core::CouponAttributes& a = m.coupon_attributes[i];
      out << m.coupon_ids[i]
          << absl::StrFormat("\t%.9g\t%.17g\t%d\t%d\t%d", m.coupon_bias[i], a.face_value,
                             a.valid_from_unix_seconds, a.valid_until_unix_seconds, a.stock);
      factors(out, m.coupon_factors, i);
    }
  });
}

absl::StatusOr<core::ModelData> ReadFactorFiles(const std::string& dir_name) {
  const fs::path dir(dir_name);
  core::ModelData m;
  COUPOND_RETURN_IF_ERROR(ReadMeta(dir, &m));
  const uint32_t d = m.dimension;

  COUPOND_RETURN_IF_ERROR(ReadRows(
      dir, "users.tsv", {"user_id", "bias"}, d,
      [&](const std::vector<absl::string_view>& cells, const Where& w) -> absl::Status {
        if (cells[0].empty()) return w.Error("column 'user_id': empty");
        float bias = 0;
        COUPOND_RETURN_IF_ERROR(ParseFloat(cells[1], w, "bias", &bias));
        m.user_ids.emplace_back(cells[0]);
        m.user_bias.push_back(bias);
        return ParseFactors(cells, kUserFixedColumns, d, w, &m.user_factors);
      }));
  COUPOND_RETURN_IF_ERROR(ReadRows(
      dir, "coupons.tsv",
      {"coupon_id", "bias", "face_value", "valid_from", "valid_until", "stock"}, d,
      [&](const std::vector<absl::string_view>& cells, const Where& w) -> absl::Status {
        if (cells[0].empty()) return w.Error("column 'coupon_id': empty");
        float bias = 0;
        core::CouponAttributes a;
        COUPOND_RETURN_IF_ERROR(ParseFloat(cells[1], w, "bias", &bias));
        COUPOND_RETURN_IF_ERROR(ParseNumber(cells[2], w, "face_value", &a.face_value));
        COUPOND_RETURN_IF_ERROR(ParseNumber(cells[3], w, "valid_from", &a.valid_from_unix_seconds));
        COUPOND_RETURN_IF_ERROR(
            ParseNumber(cells[4], w, "valid_until", &a.valid_until_unix_seconds));
        COUPOND_RETURN_IF_ERROR(ParseNumber(cells[5], w, "stock", &a.stock));
        m.coupon_ids.emplace_back(cells[0]);
        m.coupon_bias.push_back(bias);
        m.coupon_attributes.push_back(a);
        return ParseFactors(cells, kCouponFixedColumns, d, w, &m.coupon_factors);
      }));
  if (absl::Status s = core::ValidateModelData(m); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(dir_name, ": ", s.message()));
  }
  return m;
}

}  // namespace coupond::pipeline
