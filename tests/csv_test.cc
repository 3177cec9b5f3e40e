#include "pipeline/csv.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util/status_matchers.h"
#include "tests/test_util/temp_dir.h"

namespace coupond::pipeline {
namespace {

using ::coupond::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Parsed {
  size_t line;
  std::string error;
  std::vector<std::string> fields;  // "<missing>" for missing ones
  std::string raw;
};

std::unique_ptr<CsvReader> Reader(const std::string& text, CsvOptions options = {}) {
  auto reader = CsvReader::FromStream(std::make_unique<std::istringstream>(text), "t.csv",
                                      options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? *std::move(reader) : nullptr;
}

std::vector<Parsed> ReadAll(CsvReader& reader) {
  std::vector<Parsed> out;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next();
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    const CsvRecord& r = reader.record();
    Parsed p{r.line(), r.error(), {}, std::string(r.raw())};
    for (size_t i = 0; i < r.size(); ++i) {
      std::optional<absl::string_view> v = r.Get(i);
      p.fields.push_back(v ? std::string(*v) : "<missing>");
    }
    out.push_back(std::move(p));
  }
  return out;
}

TEST(CsvTest, PlainRecordsWithHeaderAndLineNumbers) {
  auto r = Reader("a,b,c\n1,2,3\n4,5,6\n");
  EXPECT_THAT(r->header(), ElementsAre("a", "b", "c"));
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[0].fields, ElementsAre("1", "2", "3"));
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[1].line, 3u);
  EXPECT_EQ(rows[1].raw, "4,5,6");
}

TEST(CsvTest, QuotedFieldHoldsDelimiterAndDoubledQuotes) {
  auto r = Reader("a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].error, "");
  EXPECT_THAT(rows[0].fields, ElementsAre("x,y", "say \"hi\""));
  EXPECT_EQ(rows[0].raw, "\"x,y\",\"say \"\"hi\"\"\"");
}

TEST(CsvTest, EmbeddedNewlineKeepsRecordStartLine) {
  auto r = Reader("a,b\n\"line1\nline2\",x\nnext,y\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[0].fields, ElementsAre("line1\nline2", "x"));
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[0].raw, "\"line1\nline2\",x");
  EXPECT_EQ(rows[1].line, 4u);  // the record after a two-line record
  EXPECT_THAT(rows[1].fields, ElementsAre("next", "y"));
}

TEST(CsvTest, CrlfLineEndsAndNoFinalNewline) {
  auto r = Reader("a,b\r\n1,2\r\n\"q\r\nr\",3\r\n4,5");
  EXPECT_THAT(r->header(), ElementsAre("a", "b"));
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0].fields, ElementsAre("1", "2"));
  EXPECT_EQ(rows[0].raw, "1,2");
  EXPECT_THAT(rows[1].fields, ElementsAre("q\r\nr", "3"));  // CRLF inside quotes is data
  EXPECT_EQ(rows[2].line, 5u);
  EXPECT_THAT(rows[2].fields, ElementsAre("4", "5"));
}

TEST(CsvTest, ByteOrderMarkIsSkipped) {
  auto r = Reader("\xEF\xBB\xBFuser_id,x\n1,2\n");
  EXPECT_THAT(r->header(), ElementsAre("user_id", "x"));
  EXPECT_EQ(r->FindColumn("user_id"), 0u);
}

TEST(CsvTest, NullMarkersAndEmptyAreMissingButQuotedNullIsText) {
  auto r = Reader("a,b,c,d,e\nnull,NULL,,\"null\",\"\"\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0].fields, ElementsAre("<missing>", "<missing>", "<missing>", "null",
                                          "<missing>"));
}

TEST(CsvTest, MissingTrailingFieldAndRaggedRows) {
  auto r = Reader("a,b,c\n1,2,\n1,2\n1,2,3,4\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_THAT(rows[0].fields, ElementsAre("1", "2", "<missing>"));  // trailing empty field
  EXPECT_THAT(rows[1].fields, ElementsAre("1", "2"));               // short: caller decides
  EXPECT_THAT(rows[2].fields, ElementsAre("1", "2", "3", "4"));     // long: caller decides
  // Past the end of a short record a field is missing.
  auto r2 = Reader("a,b,c\n1,2\n");
  ASSERT_TRUE(*r2->Next());
  EXPECT_FALSE(r2->record().Get(2).has_value());
  EXPECT_EQ(r2->record().Text(5), "");
}

TEST(CsvTest, BlankLinesAreSkippedButCounted) {
  auto r = Reader("a\n\n1\r\n\r\n2\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].line, 3u);
  EXPECT_EQ(rows[1].line, 5u);
}

TEST(CsvTest, MalformedRecordsAreReportedAndReadingContinues) {
  auto r = Reader("a,b\nab\"c,1\n\"x\"y,2\nok,3\n\"open,4\n5,6\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_THAT(rows[0].error, HasSubstr("quote inside an unquoted field"));
  EXPECT_EQ(rows[0].raw, "ab\"c,1");
  EXPECT_THAT(rows[1].error, HasSubstr("after a closing quote"));
  EXPECT_EQ(rows[1].line, 3u);
  EXPECT_EQ(rows[2].error, "");
  EXPECT_THAT(rows[2].fields, ElementsAre("ok", "3"));
  // An unterminated quote swallows the rest of the input and says where it started.
  EXPECT_THAT(rows[3].error, HasSubstr("opened on line 5 is not closed"));
  EXPECT_EQ(rows[3].line, 5u);
}

TEST(CsvTest, OverlongRecordIsMalformed) {
  CsvOptions options;
  options.max_record_bytes = 8;
  auto r = Reader("a\n0123456789abc\nshort\n", options);
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_THAT(rows[0].error, HasSubstr("longer than 8 bytes"));
  EXPECT_THAT(rows[1].fields, ElementsAre("short"));
  EXPECT_EQ(rows[1].line, 3u);
}

TEST(CsvTest, HeaderLookupIsCaseInsensitiveByDefault) {
  auto r = Reader("User_ID, Coupon_ID \n1,2\n");
  EXPECT_EQ(r->FindColumn("user_id"), 0u);
  EXPECT_EQ(r->FindColumn("coupon_id"), 1u);  // names are trimmed
  EXPECT_THAT(r->RequireColumn("time"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.csv:1: no column 'time'")));
  CsvOptions exact;
  exact.case_insensitive_header = false;
  auto r2 = Reader("User_ID\n1\n", exact);
  EXPECT_FALSE(r2->FindColumn("user_id").has_value());
  EXPECT_EQ(r2->FindColumn("User_ID"), 0u);
}

TEST(CsvTest, HeaderErrors) {
  EXPECT_THAT(CsvReader::FromStream(std::make_unique<std::istringstream>(""), "e.csv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("e.csv:1: empty file")));
  EXPECT_THAT(CsvReader::FromStream(std::make_unique<std::istringstream>("a,A\n"), "d.csv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate column")));
  EXPECT_THAT(CsvReader::Open("/nonexistent/x.csv"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(CsvTest, NoHeaderAndOtherDelimiter) {
  CsvOptions options;
  options.has_header = false;
  options.delimiter = '\t';
  auto r = Reader("1\t\"a\tb\"\n", options);
  EXPECT_TRUE(r->header().empty());
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].line, 1u);
  EXPECT_THAT(rows[0].fields, ElementsAre("1", "a\tb"));
}

TEST(CsvTest, ReadsAFileAcrossBufferBoundariesAndChecksumsIt) {
  coupond::testing::TempDir dir;
  const std::string path = dir.Sub("big.csv");
  std::string content = "id,text\n";
  for (int i = 0; i < 20000; ++i) {
    content += std::to_string(i) + ",\"multi\nline " + std::to_string(i) + "\"\r\n";
  }
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  auto reader = CsvReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  size_t n = 0;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next();
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    const CsvRecord& r = (*reader)->record();
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(r.Text(0), std::to_string(n));
    ASSERT_EQ(r.Text(1), "multi\nline " + std::to_string(n));
    ASSERT_EQ(r.line(), 2 + 2 * n);
    ++n;
  }
  EXPECT_EQ(n, 20000u);
  EXPECT_EQ((*reader)->bytes_read(), content.size());
  auto again = CsvReader::FromStream(std::make_unique<std::istringstream>(content), "same");
  ASSERT_TRUE(again.ok());
  while (*(*again)->Next()) {
  }
  EXPECT_EQ((*again)->checksum(), (*reader)->checksum());
}

TEST(CsvTest, AppendCsvFieldRoundTrips) {
  std::string line;
  for (const char* v : {"plain", "a,b", "q\"q", "multi\nline", " padded", ""}) {
    if (!line.empty() || v != std::string("plain")) line += ',';
    AppendCsvField(v, &line);
  }
  auto r = Reader("h1,h2,h3,h4,h5,h6\n" + line + "\n");
  auto rows = ReadAll(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0].fields,
              ElementsAre("plain", "a,b", "q\"q", "multi\nline", " padded", "<missing>"));
}

}  // namespace
}  // namespace coupond::pipeline
