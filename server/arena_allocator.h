#ifndef COUPOND_SERVER_ARENA_ALLOCATOR_H_
#define COUPOND_SERVER_ARENA_ALLOCATOR_H_

// Per-call protobuf arenas for callback unary methods: the request and the response of a
// call, and every string and sub-message in them, are carved out of a few arena blocks and
// freed at once when the call ends, instead of thousands of malloc/free pairs (a Score with
// 1,000 candidate ids holds 1,000 strings in the request and 1,000 scores in the response).
// Measured by bench/load_bench's in-process breakdown: parse + free of such a request fell
// from 49 µs to 21 µs. Register with the generated SetMessageAllocatorFor_<Method>.
//
// Thread-safe: AllocateMessages is called concurrently; each holder belongs to one call.

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace coupond::server {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options()) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options() {
      google::protobuf::ArenaOptions options;
      // A 1,000-candidate Score needs ~100 KB: start at 16 KB and grow to 256 KB blocks.
      options.start_block_size = 16 << 10;
      options.max_block_size = 256 << 10;
      return options;
    }
    google::protobuf::Arena arena_;
  };
};

}  // namespace coupond::server

#endif  // COUPOND_SERVER_ARENA_ALLOCATOR_H_
