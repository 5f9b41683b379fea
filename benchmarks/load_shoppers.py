"""The locustfile of ``bench_load``'s mixed traffic: logged-in shoppers browsing at a steady rate.

Run by ``benchmarks.bench_load`` (``locust -f benchmarks/load_shoppers.py``), never imported by
it: locust patches the standard library with gevent when it is imported. Each user is one
shopper from the JSON file named by ``BENCH_LOAD_SHOPPERS`` (``[{"reviewer", "cookie"}]``),
sending BENCH_LOAD_USER_RATE requests a second (``constant_throughput``), evenly over the home
page, ``/popular``, a product page, its own ``/api/v1/recommendations/<id>`` and ``/result``.
Anything but the expected status is a failure: a redirect to the login form is a lost session.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant_throughput, task

SHOPPERS = json.loads(Path(os.environ["BENCH_LOAD_SHOPPERS"]).read_text())
PRODUCTS = int(os.environ["BENCH_LOAD_PRODUCTS"])
_next = itertools.count()


class Shopper(FastHttpUser):
    wait_time = constant_throughput(float(os.environ["BENCH_LOAD_USER_RATE"]))

    def on_start(self) -> None:
        shopper = SHOPPERS[next(_next) % len(SHOPPERS)]
        self.reviewer = shopper["reviewer"]
        self.headers = {"Cookie": shopper["cookie"]}

    def _get(self, path: str, name: str, expect: int = 200) -> None:
        with self.client.get(
            path, name=name, headers=self.headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != expect:
                response.failure(f"status {response.status_code}")

    @task
    def home(self) -> None:
        self._get("/", "/", expect=302)  # to /result

    @task
    def popular(self) -> None:
        self._get("/popular", "/popular")

    @task
    def product(self) -> None:
        self._get(f"/product/B{random.randrange(PRODUCTS):09d}", "/product/<asin>")

    @task
    def api(self) -> None:
        self._get(f"/api/v1/recommendations/{self.reviewer}", "/api/v1/recommendations/<own id>")

    @task
    def result(self) -> None:
        self._get("/result", "/result")
