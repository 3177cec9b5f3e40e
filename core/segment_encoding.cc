#include "core/segment_encoding.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace coupond::core {
namespace {

std::string Key(absl::string_view name, absl::string_view value) {
  return absl::StrCat(absl::AsciiStrToLower(name), "=", value);
}

}  // namespace

SegmentAttributeIndex SegmentAttributeIndex::Build(absl::Span<const SegmentFeature> features) {
  SegmentAttributeIndex index;
  absl::flat_hash_map<std::string, uint32_t> attribute_of;  // lower-cased name -> attribute
  for (uint32_t j = 0; j < features.size(); ++j) {
    const absl::string_view full = features[j].name;
    const size_t eq = full.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;  // a profile column
    const std::string name = absl::AsciiStrToLower(full.substr(0, eq));
    auto [it, inserted] =
        attribute_of.emplace(name, static_cast<uint32_t>(index.columns_.size()));
    if (inserted) index.columns_.emplace_back();
    index.columns_[it->second].push_back(j);
    index.by_key_.emplace(Key(name, full.substr(eq + 1)), Column{it->second, j});
  }
  return index;
}

std::optional<SegmentAttributeIndex::Column> SegmentAttributeIndex::Find(
    absl::string_view name, absl::string_view value) const {
  // A name holding '=' would otherwise build the key of another name's value
  // ("a=b" -> "c" and "a" -> "b=c" are different attributes).
  if (name.empty() || name.find('=') != absl::string_view::npos || by_key_.empty()) {
    return std::nullopt;
  }
  auto it = by_key_.find(Key(name, value));
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

size_t SegmentAttributeIndex::memory_bytes() const {
  size_t bytes = by_key_.capacity() * (1 + sizeof(std::pair<std::string, Column>));
  for (const auto& [key, column] : by_key_) bytes += key.capacity();
  for (const std::vector<uint32_t>& c : columns_) {
    bytes += sizeof(c) + c.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

}  // namespace coupond::core
