#include "edge/raw_call.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "spdlog/spdlog.h"

namespace coupond::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// protobuf's own default nesting limit.
constexpr int kMaxDepth = 100;

// The position of the first byte that is not part of valid UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or npos.
size_t FirstInvalidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n >= s.size() - i) return i;  // the sequence is cut off by the end
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += n + 1;
  }
  return absl::string_view::npos;
}

bool ReadVarint(absl::string_view data, size_t* pos, uint64_t* value) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *pos < data.size(); shift += 7) {
    const auto b = static_cast<unsigned char>(data[(*pos)++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *value = v;
      return true;
    }
  }
  return false;
}

bool IsVarintType(const FieldDescriptor& f) {
  switch (f.type()) {
    case FieldDescriptor::TYPE_INT32: case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_UINT32: case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_SINT32: case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_BOOL: case FieldDescriptor::TYPE_ENUM:
      return true;
    default:
      return false;
  }
}

// The width of a fixed-size scalar type; 0 for others.
size_t FixedWidth(const FieldDescriptor& f) {
  switch (f.type()) {
    case FieldDescriptor::TYPE_FIXED32: case FieldDescriptor::TYPE_SFIXED32:
    case FieldDescriptor::TYPE_FLOAT:
      return 4;
    case FieldDescriptor::TYPE_FIXED64: case FieldDescriptor::TYPE_SFIXED64:
    case FieldDescriptor::TYPE_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

// Where the walk is: the field being read and, through `parent`, the fields that contain
// it. Named only when a problem is found (a body can hold millions of fields).
struct PathNode {
  const PathNode* parent = nullptr;
  const FieldDescriptor* field = nullptr;  // null: an unknown field, named by number
  uint64_t number = 0;
  int index = -1;  // occurrence of a repeated field; -1: not indexed
};

// "campaign.coupons[2].coupon_id"; "" at the top.
std::string PathName(const PathNode* node) {
  std::vector<const PathNode*> chain;
  for (; node != nullptr; node = node->parent) chain.push_back(node);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!out.empty()) out.push_back('.');
    if ((*it)->field != nullptr) {
      out += (*it)->field->name();
    } else {
      absl::StrAppend(&out, "field ", (*it)->number);
    }
    if ((*it)->index >= 0) absl::StrAppend(&out, "[", (*it)->index, "]");
  }
  return out;
}

// "<path>: <problem>", or just the problem at the top.
std::string Problem(const PathNode* node, absl::string_view problem) {
  const std::string path = PathName(node);
  return path.empty() ? std::string(problem) : absl::StrCat(path, ": ", problem);
}

// Walks one message's wire data (or a group's, when `end_group` is its field number) and
// returns the first problem, "" when none. `type` null: an unknown message (fields are
// only checked for being well-formed). *pos ends after the data (or the end-group tag).
// Each byte is read once at the level that holds it: linear in the body's size.
std::string Walk(const Descriptor* type, absl::string_view data, size_t* pos,
                 const PathNode* parent, int depth, uint64_t end_group) {
  if (depth > kMaxDepth) {
    return Problem(parent, absl::StrCat("nested deeper than ", kMaxDepth, " messages"));
  }
  std::map<int, int> seen;  // repeated field number -> occurrences so far
  while (*pos < data.size()) {
    const size_t tag_at = *pos;
    uint64_t tag = 0;
    if (!ReadVarint(data, pos, &tag)) {
      return Problem(parent, absl::StrCat("truncated tag at byte ", tag_at));
    }
    const uint64_t number = tag >> 3;
    const int wire_type = static_cast<int>(tag & 7);
    if (number == 0 || number > 536870911) {
      return Problem(parent,
                     absl::StrCat("invalid field number ", number, " at byte ", tag_at));
    }
    PathNode here{parent, nullptr, number, -1};
    const FieldDescriptor* field =
        type == nullptr ? nullptr : type->FindFieldByNumber(static_cast<int>(number));
    if (field != nullptr) {
      here.field = field;
      // Repeated fields are named by occurrence; a packed run of scalars is one occurrence
      // and is named without an index.
      const bool packed_scalars = wire_type == 2 &&
                                  field->type() != FieldDescriptor::TYPE_STRING &&
                                  field->type() != FieldDescriptor::TYPE_BYTES &&
                                  field->type() != FieldDescriptor::TYPE_MESSAGE;
      if (field->is_repeated() && !packed_scalars) here.index = seen[field->number()]++;
    }
    switch (wire_type) {
      case 0: {
        uint64_t ignored = 0;
        if (!ReadVarint(data, pos, &ignored)) return Problem(&here, "truncated varint");
        break;
      }
      case 1:
      case 5: {
        const size_t width = wire_type == 1 ? 8 : 4;
        if (data.size() - *pos < width) {
          return Problem(&here, absl::StrCat("truncated ", width, "-byte value (",
                                             data.size() - *pos, " bytes left)"));
        }
        *pos += width;
        break;
      }
      case 2: {
        uint64_t length = 0;
        if (!ReadVarint(data, pos, &length)) return Problem(&here, "truncated length");
        if (length > data.size() - *pos) {
          return Problem(&here, absl::StrCat("length ", length,
                                             " runs past the end of the body (",
                                             data.size() - *pos, " bytes left): truncated"));
        }
        const absl::string_view payload = data.substr(*pos, static_cast<size_t>(length));
        *pos += static_cast<size_t>(length);
        if (field == nullptr) break;
        if (field->type() == FieldDescriptor::TYPE_STRING &&
            field->file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO3) {
          if (const size_t bad = FirstInvalidUtf8(payload); bad != absl::string_view::npos) {
            return Problem(&here, absl::StrCat("not valid UTF-8 (byte ", bad, " of ",
                                               payload.size(),
                                               "; proto3 strings must be UTF-8)"));
          }
        } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
          size_t inner = 0;
          std::string problem = Walk(field->message_type(), payload, &inner, &here, depth + 1, 0);
          if (!problem.empty()) return problem;
        } else if (field->is_repeated() && IsVarintType(*field)) {
          for (size_t p = 0; p < payload.size();) {
            uint64_t ignored = 0;
            if (!ReadVarint(payload, &p, &ignored)) {
              return Problem(&here, absl::StrCat("truncated packed varint at byte ", p));
            }
          }
        } else if (field->is_repeated() && FixedWidth(*field) != 0 &&
                   payload.size() % FixedWidth(*field) != 0) {
          return Problem(&here, absl::StrCat("packed length ", payload.size(),
                                             " is not a multiple of ", FixedWidth(*field)));
        }
        break;
      }
      case 3: {
        std::string problem = Walk(nullptr, data, pos, &here, depth + 1, number);
        if (!problem.empty()) return problem;
        break;
      }
      case 4:
        if (number == end_group) return "";
        return Problem(&here, absl::StrCat("end-group tag without its start at byte ", tag_at));
      default:
        return Problem(&here, absl::StrCat("invalid wire type ", wire_type, " at byte ", tag_at));
    }
  }
  if (end_group != 0) return Problem(parent, "group not closed: truncated");
  return "";
}

}  // namespace

int GrpcReceiveLimit(size_t max_request_bytes) {
  const size_t doubled = max_request_bytes > SIZE_MAX / 2 ? SIZE_MAX : 2 * max_request_bytes;
  const size_t limit = std::max(doubled, max_request_bytes + (size_t{1} << 20));
  return limit >= static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(limit);
}

std::string DescribeWireProblem(const Descriptor& type, absl::string_view bytes) {
  size_t pos = 0;
  return Walk(&type, bytes, &pos, nullptr, 0, 0);
}

absl::Status ParseRequestBody(const grpc::ByteBuffer& body, size_t max_bytes,
                              google::protobuf::Message* message) {
  message->Clear();
  const std::string& type = message->GetDescriptor()->full_name();
  if (!body.Valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request body missing: the call ended without a ", type, " message"));
  }
  const size_t length = body.Length();
  if (length > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("request body of ", length,
                                                     " bytes is over the server's limit of ",
                                                     max_bytes, " bytes for a ", type));
  }
  // ProtoBufferReader reads the slices in place; it only needs a mutable pointer to take
  // its own reference to them (the buffer is not changed).
  grpc::ByteBuffer& readable = const_cast<grpc::ByteBuffer&>(body);
  {
    grpc::ProtoBufferReader reader(&readable);
    if (reader.status().ok() && message->ParseFromZeroCopyStream(&reader)) {
      return absl::OkStatus();
    }
  }
  // Cold path: flatten the body and find out what is wrong with it.
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (readable.Dump(&slices).ok()) {
    bytes.reserve(length);
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  std::string problem = DescribeWireProblem(*message->GetDescriptor(), bytes);
  if (problem.empty()) problem = "malformed protobuf wire data";
  message->Clear();
  return absl::InvalidArgumentError(absl::StrCat("request body is not a valid ", type, " (",
                                                 length, " bytes): ", problem));
}

absl::Status SerializeResponseBody(const google::protobuf::Message& message,
                                   grpc::ByteBuffer* body) {
  body->Clear();  // gRPC's writer REQUIRES an empty buffer (a reused one is not)
  bool own_buffer = false;
  const grpc::Status s =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, body, &own_buffer);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("cannot serialize the ",
                                            message.GetDescriptor()->full_name(),
                                            " response: ", s.error_message()));
  }
  return absl::OkStatus();
}

std::string RequestIdOf(const google::protobuf::Message& message) {
  const FieldDescriptor* field = message.GetDescriptor()->FindFieldByNumber(1);
  if (field == nullptr || field->name() != "request_id" || field->is_repeated() ||
      field->type() != FieldDescriptor::TYPE_STRING) {
    return "";
  }
  return message.GetReflection()->GetString(message, field);
}

void AttachRequestId(grpc::CallbackServerContext* context,
                     const google::protobuf::Message& request) {
  std::string id = RequestIdOf(request);
  // Metadata values must be printable ASCII (gRPC fails a call whose metadata is not);
  // request ids are the client's, so an id outside that is not echoed.
  if (id.empty() || id.size() > 256) return;
  for (char c : id) {
    if (c < 0x20 || c > 0x7E) return;
  }
  context->AddTrailingMetadata(kRequestIdTrailer, id);
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void RouteProtobufLogsToSpdlog() {
  google::protobuf::SetLogHandler(+[](google::protobuf::LogLevel level, const char* filename,
                                      int line, const std::string& message) {
    if (level == google::protobuf::LOGLEVEL_FATAL) {
      spdlog::critical("protobuf {}:{}: {}", filename, line, message);
    } else if (absl::StrContains(message, "when parsing a protocol buffer")) {
      spdlog::debug("protobuf {}:{}: {}", filename, line, message);
    } else {
      spdlog::warn("protobuf {}:{}: {}", filename, line, message);
    }
  });
}

google::protobuf::ArenaOptions CallArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 16 << 10;
  options.max_block_size = 256 << 10;
  return options;
}

}  // namespace coupond::edge
