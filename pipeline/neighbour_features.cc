#include "pipeline/neighbour_features.h"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace coupond::pipeline {

void ReplaceListsByNeighbours(learn::TrainingData* data, absl::Span<const uint32_t> train,
                              absl::Span<const std::string> prefixes, PipelineResult* counts) {
  if (prefixes.empty()) return;
  const learn::SparseFeatures& in = data->coupon_features;
  const size_t nc = data->coupon_ids.size();
  std::vector<char> is_list(in.num_features(), 0);
  bool any = false;
  for (size_t f = 0; f < in.num_features(); ++f) {
    for (const std::string& p : prefixes) {
      if (in.names[f].compare(0, p.size(), p) == 0) {
        is_list[f] = 1;
        any = true;
      }
    }
  }
  if (!any) return;
  std::vector<char> seen(nc, 0);
  for (uint32_t i : train) seen[data->examples[i].coupon] = 1;
  // Inverted index: list value -> seen coupons carrying it.
  std::vector<std::vector<uint32_t>> carriers(in.num_features());
  std::vector<uint32_t> list_size(nc, 0);
  for (uint32_t c = 0; c < nc; ++c) {
    for (uint32_t f : in.row(c)) {
      if (!is_list[f]) continue;
      ++list_size[c];
      if (seen[c]) carriers[f].push_back(c);
    }
  }
  learn::SparseFeatures out;
  out.names = in.names;
  std::vector<int64_t> like(nc, -1);  // feature index of "like=<id>", created on demand
  auto like_feature = [&](uint32_t c) {
    if (like[c] < 0) {
      like[c] = static_cast<int64_t>(out.names.size());
      out.names.push_back(absl::StrCat("like=", data->coupon_ids[c]));
    }
    return static_cast<uint32_t>(like[c]);
  };
  std::vector<uint32_t> shared(nc, 0);
  std::vector<uint32_t> touched;
  std::vector<uint32_t> row;
  for (uint32_t c = 0; c < nc; ++c) {
    row.clear();
    for (uint32_t f : in.row(c)) {
      if (!is_list[f]) row.push_back(f);
    }
    if (list_size[c] > 0) {
      ++counts->neighbour_coupons;
      int64_t best = -1;
      if (seen[c]) {
        best = c;
      } else {
        ++counts->neighbour_cold_coupons;
        touched.clear();
        for (uint32_t f : in.row(c)) {
          if (!is_list[f]) continue;
          for (uint32_t o : carriers[f]) {
            if (shared[o]++ == 0) touched.push_back(o);
          }
        }
        double best_j = 0;
        std::sort(touched.begin(), touched.end());  // ties: the lowest index
        for (uint32_t o : touched) {
          const double j = static_cast<double>(shared[o]) /
                           static_cast<double>(list_size[c] + list_size[o] - shared[o]);
          if (j > best_j) {
            best_j = j;
            best = o;
          }
          shared[o] = 0;
        }
        if (best >= 0) ++counts->neighbour_cold_matched;
      }
      if (best >= 0) row.push_back(like_feature(static_cast<uint32_t>(best)));
    }
    std::sort(row.begin(), row.end());
    out.AddRow(row);
  }
  data->coupon_features = std::move(out);
}

}  // namespace coupond::pipeline
