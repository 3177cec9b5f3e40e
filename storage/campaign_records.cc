// Campaign records of the model store (see model_store.h for the layout and why each
// update is its own ingested file).

#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/rocksdb_status.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "storage/keys.h"
#include "storage/model_store.h"
#include "xxhash.h"

namespace coupond::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kCampaignRecordFormat = 1;
constexpr size_t kMaxPayloadBytes = size_t{64} << 20;

}  // namespace

absl::Status ValidateCampaignId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxCampaignIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "campaign_id: must be 1..", kMaxCampaignIdBytes, " bytes, got ", id.size()));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "campaign_id: '", absl::CHexEscape(id),
          "' has a character outside [A-Za-z0-9._-] (a stored campaign's id is part of a key)"));
    }
  }
  return absl::OkStatus();
}

namespace {

using internal::Append;
using internal::Take;

std::string EncodeRecord(int64_t published, absl::string_view payload) {
  std::string value;
  value.reserve(internal::kCampaignHeaderBytes + payload.size());
  Append(&value, kCampaignRecordFormat);
  Append(&value, published);
  Append(&value, static_cast<uint64_t>(XXH3_64bits(payload.data(), payload.size())));
  value.append(payload.data(), payload.size());
  return value;
}

// Parses one record from its key (below the "p/" prefix) and value.
absl::StatusOr<CampaignRecord> DecodeRecord(absl::string_view key, absl::string_view value) {
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("campaign record '", absl::CHexEscape(key), "': ", what));
  };
  const absl::string_view rest = key.substr(internal::kCampaignsPrefix.size());
  const size_t slash = rest.rfind('/');
  CampaignRecord record;
  if (slash == absl::string_view::npos || rest.size() - slash - 1 != 20 ||
      !absl::SimpleAtoi(rest.substr(slash + 1), &record.sequence) || record.sequence == 0) {
    return corrupt("malformed key");
  }
  record.campaign_id = std::string(rest.substr(0, slash));
  if (!ValidateCampaignId(record.campaign_id).ok()) return corrupt("malformed campaign id");
  if (value.size() < internal::kCampaignHeaderBytes) {
    return corrupt(absl::StrCat(value.size(), " bytes, shorter than the record header"));
  }
  const char* p = value.data();
  const uint32_t format = Take<uint32_t>(p);
  if (format != kCampaignRecordFormat) {
    return corrupt(absl::StrCat("record format ", format, " (this build reads ",
                                kCampaignRecordFormat, ")"));
  }
  record.published_unix_seconds = Take<int64_t>(p);
  const uint64_t stored_hash = Take<uint64_t>(p);
  const absl::string_view payload = value.substr(internal::kCampaignHeaderBytes);
  if (XXH3_64bits(payload.data(), payload.size()) != stored_hash) {
    return corrupt("payload checksum mismatch");
  }
  record.payload = std::string(payload);
  return record;
}

// Every record under `prefix`, in key order (per campaign: by sequence).
absl::StatusOr<std::vector<CampaignRecord>> ScanRecords(rocksdb::DB* db, const std::string& prefix,
                                                        const std::string& store_path) {
  std::vector<CampaignRecord> records;
  std::string upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);  // prefixes end in '/'
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    COUPOND_ASSIGN_OR_RETURN(
        CampaignRecord record,
        DecodeRecord(absl::string_view(it->key().data(), it->key().size()),
                     absl::string_view(it->value().data(), it->value().size())));
    records.push_back(std::move(record));
  }
  COUPOND_RETURN_IF_ERROR(
      common::FromRocksDb(it->status(), absl::StrCat("model store '", store_path, "': reading campaigns")));
  return records;
}

}  // namespace

absl::Status ModelStore::IngestRows(const std::string& file_name,
                                    const std::vector<std::pair<std::string, std::string>>& rows) {
  std::error_code ec;
  const fs::path dir = fs::path(path_) / "ingest";
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  const std::string sst = (dir / file_name).string();
  absl::Status status = [&]() -> absl::Status {
    const rocksdb::EnvOptions env_options;
    const rocksdb::Options sst_options;
    rocksdb::SstFileWriter writer(env_options, sst_options);
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Open(sst), "SstFileWriter::Open " + sst));
    for (const auto& [key, value] : rows) {
      COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Put(key, value), "SstFileWriter::Put"));
    }
    COUPOND_RETURN_IF_ERROR(common::FromRocksDb(writer.Finish(), "SstFileWriter::Finish"));
    rocksdb::IngestExternalFileOptions ingest;
    ingest.move_files = true;
    return common::FromRocksDb(db_->IngestExternalFile({sst}, ingest), absl::StrCat("ingesting ", sst));
  }();
  fs::remove(sst, ec);  // already moved on success; a partial file on failure
  return status;
}

absl::StatusOr<CampaignRecord> ModelStore::PublishCampaign(absl::string_view campaign_id,
                                                           absl::string_view payload,
                                                           int64_t published_unix_seconds) {
  if (!writable_) {
    return absl::FailedPreconditionError(absl::StrCat("model store '", path_, "' is open read-only"));
  }
  COUPOND_RETURN_IF_ERROR(ValidateCampaignId(campaign_id));
  if (payload.size() > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("campaign payload: ", payload.size(), " bytes, limit ", kMaxPayloadBytes));
  }
  // The store has one writer at a time (RocksDB's lock), so reading the newest sequence and
  // ingesting the next one cannot race with another publisher.
  COUPOND_ASSIGN_OR_RETURN(std::vector<CampaignRecord> history, CampaignHistory(campaign_id));
  CampaignRecord record;
  record.campaign_id = std::string(campaign_id);
  record.sequence = history.empty() ? 1 : history.back().sequence + 1;
  record.published_unix_seconds =
      published_unix_seconds != 0 ? published_unix_seconds : std::time(nullptr);
  record.payload = std::string(payload);
  COUPOND_RETURN_IF_ERROR(IngestRows(
      absl::StrCat("campaign-", campaign_id, "-", record.sequence, ".sst"),
      {{internal::CampaignKey(campaign_id, record.sequence),
        EncodeRecord(record.published_unix_seconds, payload)}}));
  return record;
}

absl::StatusOr<std::vector<CampaignRecord>> ModelStore::CampaignHistory(
    absl::string_view campaign_id) const {
  COUPOND_RETURN_IF_ERROR(ValidateCampaignId(campaign_id));
  return ScanRecords(db_.get(), internal::CampaignPrefix(campaign_id), path_);
}

absl::StatusOr<std::vector<CampaignRecord>> ModelStore::LatestCampaigns() const {
  // Hop from campaign to campaign, reading only the newest record of each: old records
  // accumulate (every price update adds one) and the server polls this every few seconds.
  // Keys sort by campaign id, then sequence, and "p/<id>/" ends in '/', so the last key
  // below "p/<id>0" is the newest record of <id>.
  std::vector<CampaignRecord> latest;
  std::string upper = std::string(internal::kCampaignsPrefix);
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(rocksdb::Slice(internal::kCampaignsPrefix.data(), internal::kCampaignsPrefix.size()));
       it->Valid();) {
    const absl::string_view key(it->key().data(), it->key().size());
    const absl::string_view rest = key.substr(internal::kCampaignsPrefix.size());
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos) {
      return absl::DataLossError(
          absl::StrCat("campaign record '", absl::CHexEscape(key), "': malformed key"));
    }
    std::string next = internal::CampaignPrefix(rest.substr(0, slash));
    next.back() = static_cast<char>(next.back() + 1);
    it->SeekForPrev(next);
    if (!it->Valid()) break;  // reported through it->status() below
    COUPOND_ASSIGN_OR_RETURN(
        CampaignRecord record,
        DecodeRecord(absl::string_view(it->key().data(), it->key().size()),
                     absl::string_view(it->value().data(), it->value().size())));
    latest.push_back(std::move(record));
    it->Seek(next);
  }
  COUPOND_RETURN_IF_ERROR(
      common::FromRocksDb(it->status(), absl::StrCat("model store '", path_, "': reading campaigns")));
  return latest;
}

}  // namespace coupond::storage
