"""The control plane against a real local Ray head: submit, follow, report, cancel, restart."""

from __future__ import annotations

import json
import time

import httpx
import psutil
import yaml
from ray.job_submission import JobSubmissionClient

from pipeline.api.config import ServiceConfig
from pipeline.api.server import connect_ray
from pipeline.api.states import JobState
from pipeline.api.store import JobStore, NewJob, SpecRecord
from tests.api_support import (TOKEN, ServiceThread, finished, free_port, long_job_spec,
                               quickstart_counts, service_config, start_service_process,
                               submit_yaml, wait_for, wait_healthy)

pytest_plugins = ["tests.api_fixtures"]


def test_quickstart_job_runs_to_success_with_progress_report_logs_and_metrics(service,
                                                                               storage_root):
    client = service.client()
    spec = (storage_root / "examples" / "quickstart.yaml").read_text()
    expected = quickstart_counts()
    response = submit_yaml(client, spec, base_dir="examples", submitter="alice")
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["state"] == "PENDING" and job["submitter"] == "alice"
    assert job["output"] == str(storage_root / "out" / "quickstart")
    assert job["spec"] == spec and "length_filter" in job["resolved_spec"]

    done = wait_for(client, job["id"], finished, what="a final state")
    assert done["state"] == "SUCCEEDED", done
    assert done["started_at"] and done["finished_at"]
    states = [t["state"] for t in done["transitions"]]
    assert states[0] == "PENDING" and states[-1] == "SUCCEEDED"
    progress = done["progress"]
    assert progress["shards"] == {"planned": 3, "done": 3, "failed": 0}
    assert progress["fraction"] == 1.0 and progress["eta_s"] is None
    assert progress["docs"] == expected
    stages = {s["stage"]: s for s in progress["stages"]}
    assert stages["read"]["in"] == expected["in"] and stages["read"]["shards_done"] == 3
    assert {k: stages["length_filter"][k] for k in expected} == expected
    assert sum(p["docs_per_s"] for p in progress["timeline"]) > 0

    report = client.get(f"/jobs/{job['id']}/report")
    assert report.status_code == 200
    on_disk = json.loads((storage_root / "out" / "quickstart" / "report" / "summary.json")
                         .read_text())
    assert report.json() == on_disk
    assert report.json()["reasons"][0]["reason"] == "too_short:words"
    html = client.get(f"/jobs/{job['id']}/report", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "<svg" in html.text

    logs = client.get(f"/jobs/{job['id']}/logs").text
    assert "job quickstart: 3 shards" in logs
    assert client.get(f"/jobs/{job['id']}/logs", params={"tail": 1}).text.count("\n") <= 1
    with client.stream("GET", f"/jobs/{job['id']}/logs", params={"follow": True}) as stream:
        assert "job quickstart" in "".join(stream.iter_text())  # ends: the job is finished

    listed = client.get("/jobs", params={"state": "SUCCEEDED"}).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["total"] == 1
    assert listed["jobs"][0]["fraction"] == 1.0 and listed["jobs"][0]["docs"] == expected
    assert client.get("/jobs", params={"state": ["RUNNING", "PENDING"]}).json()["total"] == 0

    metrics = client.get("/metrics").text
    assert 'pipeline_jobs{state="SUCCEEDED"} 1.0' in metrics
    assert ('pipeline_stage_docs_total{outcome="rejected",stage="length_filter"} '
            f'{expected["rejected"]:.1f}') in metrics
    assert f'pipeline_stage_docs_total{{outcome="in",stage="read"}} {expected["in"]:.1f}' \
        in metrics
    assert 'pipeline_api_request_duration_seconds_bucket{le="0.05",method="GET",' \
           'route="/jobs/{job_id}"}' in metrics

    # The same spec again, as a JSON object: the output is complete, so it resumes at once.
    again = client.post("/jobs", json={"spec": yaml.safe_load(spec), "base_dir": "examples"})
    assert again.status_code == 201, again.text
    rerun = wait_for(client, again.json()["id"], finished)
    assert rerun["state"] == "SUCCEEDED" and rerun["progress"]["docs"] == expected
    assert "3 already done" in client.get(f"/jobs/{rerun['id']}/logs").text

    assert client.delete(f"/jobs/{job['id']}").status_code == 204
    assert client.get(f"/jobs/{job['id']}").status_code == 404
    assert (storage_root / "out" / "quickstart" / "data").is_dir()  # outputs stay by default
    assert client.delete(f"/jobs/{rerun['id']}", params={"purge_output": True}).status_code == 204
    assert not (storage_root / "out" / "quickstart").exists()
    assert client.get("/jobs").json()["total"] == 0


def test_cancelling_a_long_job_stops_it_on_ray(service, storage_root, ray_head):
    client = service.client()
    response = submit_yaml(client, long_job_spec(storage_root, "long-cancel", shards=20_000))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    running = wait_for(client, job_id, lambda j: j["state"] == "RUNNING" and j["progress"]
                       and j["progress"]["shards"]["done"] > 0, what="running with progress")
    assert running["progress"]["shards"]["planned"] > 10_000
    assert all(s["shards_done"] >= running["progress"]["shards"]["done"]
               for s in running["progress"]["stages"])
    assert 0 < running["progress"]["fraction"] < 1 and running["progress"]["eta_s"] > 0

    assert client.delete(f"/jobs/{job_id}").status_code == 409  # not while it runs
    cancel = client.post(f"/jobs/{job_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["state"] == "CANCELLING"
    done = wait_for(client, job_id, finished, timeout=60, what="a final state")
    assert done["state"] == "CANCELLED", done
    assert JobSubmissionClient(ray_head.dashboard_url).get_job_status(job_id).value == "STOPPED"

    manifests = storage_root / "out" / "long-cancel" / "manifests"
    time.sleep(2)
    committed = len(list(manifests.glob("part-*.json")))
    time.sleep(2)
    assert len(list(manifests.glob("part-*.json"))) == committed < 20_000  # nothing runs on
    partial = client.get(f"/jobs/{job_id}/report").json()  # over the committed shards
    assert partial["shards"]["finished"] == committed and partial["docs"]["in"] > 0
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 409
    assert client.delete(f"/jobs/{job_id}").status_code == 204


def test_restarted_service_reconciles_jobs_that_ran_on_without_it(tmp_path, ray_head,
                                                                  storage_root):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--port", str(port), "--state-dir", str(tmp_path / "state"),
            "--storage-root", str(storage_root), "--ray-address", ray_head.dashboard_url,
            "--poll-interval", "0.5", "--log-level", "warning"]
    log = tmp_path / "service.log"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30)
    ray = JobSubmissionClient(ray_head.dashboard_url)

    first = start_service_process(args, log, PIPELINE_API_TOKEN=TOKEN)
    try:
        wait_healthy(url, first, log)
        response = submit_yaml(client, long_job_spec(storage_root, "long-restart", 600))
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        wait_for(client, job_id, lambda j: j["state"] == "RUNNING", what="RUNNING")
    finally:
        first.kill()  # SIGKILL: the service gets no chance to tidy up
        first.wait()

    second = start_service_process(args, log, PIPELINE_API_TOKEN=TOKEN)
    try:
        wait_healthy(url, second, log)
        seen = client.get(f"/jobs/{job_id}").json()
        assert seen["state"] in ("RUNNING", "SUCCEEDED"), seen
        if seen["state"] == "RUNNING":  # followed on: progress keeps coming in
            wait_for(client, job_id, lambda j: j["progress"] and
                     j["progress"]["shards"]["done"] > 0, what="progress")
    finally:
        second.kill()
        second.wait()

    deadline = time.monotonic() + 120
    while not ray.get_job_status(job_id).is_terminal():  # finishes while no service runs
        assert time.monotonic() < deadline, "the job did not finish on Ray"
        time.sleep(0.5)

    third = start_service_process(args, log, PIPELINE_API_TOKEN=TOKEN)
    try:
        wait_healthy(url, third, log)
        done = wait_for(client, job_id, finished, timeout=30)
        assert done["state"] == "SUCCEEDED", done
        assert "found on Ray after the service restarted" in done["transitions"][-1]["message"]
        progress = done["progress"]
        assert progress["shards"]["done"] == progress["shards"]["planned"] > 500
        assert progress["docs"]["in"] == 4_000
        assert "job long-restart" in client.get(f"/jobs/{job_id}/logs").text
    finally:
        third.terminate()
        third.wait(timeout=30)


def test_service_without_a_ray_address_adopts_the_head_it_started(ray_head, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    config = ServiceConfig(state_dir=ray_head.state_dir, db_path=tmp_path / "jobs.sqlite3",
                           storage_roots=[str(root)], ray_address=None)
    head = connect_ray(config)
    assert head is not None  # the service owns it (and would stop it on exit)
    assert config.ray_address == ray_head.dashboard_url  # adopted, not a second head
    assert head.read_record() == ray_head.record
    with ServiceThread(config) as running:
        health = httpx.get(f"{running.url}/healthz").json()
        assert health == {"status": "ok", "ray": "reachable"}
        assert running.client(None).get("/jobs").status_code == 200  # no token configured



def test_a_service_on_its_own_starts_a_ray_head_and_stops_it_when_idle(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    config = ServiceConfig(state_dir=tmp_path / "state", storage_roots=[str(root)],
                           ray_num_cpus=1)
    head = connect_ray(config)  # nothing configured: a new head of its own
    temp_dir = head.read_record().temp_dir
    assert config.ray_address.startswith("http://127.0.0.1:")
    with ServiceThread(config, owned_head=head) as running:
        assert httpx.get(f"{running.url}/healthz").json()["ray"] == "reachable"
        assert JobSubmissionClient(config.ray_address).list_jobs() == []
    assert head.read_record() is None  # stopped with the service: no job was active
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if temp_dir in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


def test_a_job_ray_has_never_heard_of_is_failed_with_a_way_out(tmp_path, ray_head, storage_root):
    # As after the cluster was replaced: the store says RUNNING, Ray knows nothing of it.
    config = service_config(tmp_path, ray_head, storage_root)
    store = JobStore(config.db_path)
    store.create(NewJob(id="lost-job", name="lost", submitter="x", client=None,
                        output=str(storage_root / "out" / "lost"), gpus=0.0,
                        spec=SpecRecord("name: lost\n", "name: lost\n", "/nowhere", "/")))
    store.mark_submitted("lost-job")
    store.transition("lost-job", JobState.RUNNING)
    with ServiceThread(config) as running:
        job = wait_for(running.client(), "lost-job", finished, timeout=30)
    assert job["state"] == "FAILED"
    assert "Ray has no record of this job" in job["message"]
    assert "submit the spec again" in job["message"]


def test_a_job_that_cannot_reach_ray_is_answered_503_and_recorded(tmp_path, storage_root):
    config = service_config(tmp_path, None, storage_root, ray_address="http://127.0.0.1:9")
    with ServiceThread(config, reconcile=False) as running:
        client = running.client()
        spec = (storage_root / "examples" / "quickstart.yaml").read_text()
        response = submit_yaml(client, spec, base_dir="examples")
        assert response.status_code == 503 and "cannot reach Ray" in response.json()["detail"]
        jobs = client.get("/jobs").json()["jobs"]
        assert [j["state"] for j in jobs] == ["FAILED"]
        assert jobs[0]["message"].startswith("not submitted: cannot reach Ray")
