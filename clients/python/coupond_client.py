"""A small Python client for a coupond server (the coupond.v1 API over gRPC).

Needs the stubs that clients/python/generate.sh writes (put its output folder on
PYTHONPATH) and, at run time, grpcio and protobuf (Debian 12: python3-grpcio 1.51,
python3-protobuf 3.21).

Calls return the response messages of coupond.v1 unchanged (see
proto/coupond/v1/coupon_scoring.proto for the fields). A failed call raises grpc.RpcError:
its code() is the server's status code (INVALID_ARGUMENT for a bad field, with a details()
message that starts with the field's name; UNAVAILABLE before the first model loads) and
details() its message.

Thread-safe in the way grpc channels are: one client may be shared by many threads.
"""

import grpc
from google.protobuf import json_format

from coupond.v1 import admin_pb2, admin_pb2_grpc
from coupond.v1 import coupon_scoring_pb2 as pb
from coupond.v1 import coupon_scoring_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SCORING_SERVICE = "coupond.v1.CouponScoring"


def _campaign(campaign):
    """A coupond.v1.Campaign from a message or from the JSON form of the campaign file
    (a dict such as {"campaign_id": "spring", "budget": 50, "coupons": [{"coupon_id": "c1"}]})."""
    if isinstance(campaign, pb.Campaign):
        return campaign
    return json_format.ParseDict(campaign, pb.Campaign())


class CoupondClient:
    """Typed calls to one coupond server.

    target: a gRPC target, e.g. "localhost:8980" or "dns:///coupond.internal:8980".
    root_cert: PEM bytes of the CA that signed the server's certificate (servers started
      with --tls_cert/--tls_key); None (default) for plaintext. b"" uses the system roots.
    admin_token: sent as "authorization: Bearer <token>" on Admin calls, and only on those
      (the server compares it with its --admin_token_file). Without TLS it travels in the
      clear.
    timeout: the deadline of each call in seconds (Assign takes its own).
    """

    def __init__(self, target, root_cert=None, admin_token=None, timeout=5.0, options=None):
        if not target:
            raise ValueError("target: required")
        if timeout <= 0:
            raise ValueError(f"timeout: {timeout} is not positive")
        if root_cert is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_cert or None)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._timeout = timeout
        self._admin_metadata = (("authorization", f"Bearer {admin_token}"),) if admin_token else ()
        self._scoring = coupon_scoring_pb2_grpc.CouponScoringStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_until_serving(self, timeout=30.0):
        """Blocks until the server reports SERVING for the scoring service (it has loaded
        a model); raises TimeoutError after `timeout` seconds."""
        request = health_pb2.HealthCheckRequest(service=SCORING_SERVICE)
        # wait_for_ready: wait for the server to listen instead of failing at once; Watch
        # streams every status change, so this waits without polling.
        try:
            for response in self._health.Watch(request, timeout=timeout, wait_for_ready=True):
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        raise TimeoutError(f"{SCORING_SERVICE} not SERVING within {timeout} s")

    def health(self, service=SCORING_SERVICE):
        """grpc.health.v1 Check: the status name, e.g. "SERVING" or "NOT_SERVING"."""
        response = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                      timeout=self._timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def score(self, user_id, coupon_ids=(), top_k=0, campaign_id="", user_attributes=None,
              as_of_unix_seconds=0, request_id=""):
        """Redemption probabilities of `user_id` for `coupon_ids` (or the coupons of the
        stored campaign `campaign_id`), highest first; only the `top_k` best when top_k > 0.
        With neither, the `top_k` best of every active coupon: top_k is then required (1 up
        to the server's --max_candidates). Returns a coupond.v1.ScoreResponse."""
        request = pb.ScoreRequest(user_id=user_id, coupon_ids=list(coupon_ids), top_k=top_k,
                                  campaign_id=campaign_id, as_of_unix_seconds=as_of_unix_seconds,
                                  user_attributes=user_attributes or {}, request_id=request_id)
        return self._scoring.Score(request, timeout=self._timeout)

    def decide(self, user_id, campaign_id="", campaign=None, prices=None, user_attributes=None,
               request_id=""):
        """The online decision for one user: with a stored campaign (`campaign_id`), or
        with `campaign` (a Campaign or its JSON dict) and `prices` (an AssignSummary's
        CampaignPrices) given inline. Returns a coupond.v1.DecideResponse."""
        request = pb.DecideRequest(user_id=user_id, campaign_id=campaign_id,
                                   user_attributes=user_attributes or {}, request_id=request_id)
        if campaign is not None:
            request.campaign.CopyFrom(_campaign(campaign))
        if prices is not None:
            request.prices.CopyFrom(prices)
        return self._scoring.Decide(request, timeout=self._timeout)

    def assign(self, campaign, user_ids=None, segments=None, chunk_size=0, timeout=60.0,
               request_id=""):
        """Budget-constrained assignment of `campaign` (a Campaign or its JSON dict) to
        `user_ids`, or to every user of the model when user_ids is None (only those of
        `segments` when given). Yields the streamed coupond.v1.AssignResponse messages as
        they arrive: chunks of at most `chunk_size` assignments (0: the server's 10,000),
        then one message with the summary. Stopping the iteration early cancels the call."""
        request = pb.AssignRequest(campaign=_campaign(campaign), chunk_size=chunk_size,
                                   request_id=request_id)
        if user_ids is not None:
            request.users.user_ids.extend(user_ids)
        else:
            request.all_users.SetInParent()  # selects the oneof even with no segments
            request.all_users.segments.extend(segments or ())
        call = self._scoring.Assign(request, timeout=timeout)
        try:
            yield from call
        finally:
            call.cancel()  # a no-op once the stream has ended

    def model_info(self):
        """The served model version's manifest (coupond.v1.GetModelInfoResponse)."""
        return self._scoring.GetModelInfo(pb.GetModelInfoRequest(), timeout=self._timeout)

    def list_campaigns(self):
        """The stored campaigns the server has loaded (coupond.v1.ListCampaignsResponse)."""
        return self._scoring.ListCampaigns(pb.ListCampaignsRequest(), timeout=self._timeout)

    def server_status(self):
        """Admin/GetServerStatus (needs admin_token): coupond.v1.GetServerStatusResponse."""
        return self._admin.GetServerStatus(admin_pb2.GetServerStatusRequest(),
                                           timeout=self._timeout, metadata=self._admin_metadata)
