#!/usr/bin/env python3
"""Queries a running coupond with the Python client: health, a user's top coupons, a small
budgeted campaign planned with Assign, and the online decision for one user from its prices.

    clients/python/generate.sh /tmp/coupond-py
    PYTHONPATH=/tmp/coupond-py:clients/python python3 clients/python/example.py localhost:8980

Against the demo's synthetic model (scripts/demo.sh): users u0000001..., coupons c00001...
"""

import sys

import grpc

from coupond_client import CoupondClient


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "localhost:8980"
    user = sys.argv[2] if len(sys.argv) > 2 else "u0000042"
    with CoupondClient(target) as client:
        client.wait_until_serving(timeout=10)
        print("health:", client.health())

        scores = client.score(user, top_k=5)
        print(f"top 5 for {user} (model version {scores.model_version}):")
        for s in scores.scores:
            print(f"  {s.coupon_id}  p={s.probability:.4f}")

        campaign = {"campaign_id": "example", "budget": 20,
                    "coupons": [{"coupon_id": f"c{i:05d}"} for i in range(1, 6)]}
        users = [f"u{i:07d}" for i in range(1, 201)]
        assigned = 0
        for message in client.assign(campaign, user_ids=users, chunk_size=50):
            assigned += len(message.assignments)
            if message.HasField("summary"):
                summary = message.summary
        print(f"assign: {assigned} assignments, expected spend {summary.expected_spend:.2f} "
              f"of {summary.budget:g}, gap {summary.relative_gap:.2e}")

        decision = client.decide(user, campaign=campaign, prices=summary.prices)
        chosen = ", ".join(c.coupon_id for c in decision.chosen) or "nothing"
        print(f"decide for {user}: {chosen}")

        try:
            client.score("")
        except grpc.RpcError as e:
            print(f"bad request: {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
