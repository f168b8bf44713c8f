"""What the traffic-control plugins (rate-limit, quota, concurrency-limit) share:
what a limit is counted by (``keys``), the headers that tell clients where they
stand (``headers``), and the choice of counter store (``store``)."""
