#ifndef COUPOND_PIPELINE_MODEL_METADATA_H_
#define COUPOND_PIPELINE_MODEL_METADATA_H_

// Step 7's provenance: what a published model says about the run that made it, as
// ModelData::metadata keys ("data.*", "split.*", "train.*", "features.*", "cold_start.*",
// "select.*", "publish.*", "feature_logistic.*", "eval.*"; AttachSegments adds
// "segments.*"). `couponctl versions` and the Admin service show them.

#include "core/model.h"
#include "pipeline/train_job.h"

namespace coupond::pipeline {

// Sets the keys above in m->metadata from `r` (a finished run's result) and `o` (its
// options); keys already there are overwritten, others kept.
void AddPipelineMetadata(const PipelineOptions& o, const PipelineResult& r, core::ModelData* m);

}  // namespace coupond::pipeline

#endif  // COUPOND_PIPELINE_MODEL_METADATA_H_
