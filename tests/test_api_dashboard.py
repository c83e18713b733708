"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright; no browser
is downloaded): a validation error on the submit page, a job submitted from the form followed
live to the end, the job list, the funnel and the report."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.api_support import TOKEN, quickstart_counts

pytest_plugins = ["tests.api_fixtures"]

CHROMIUM = os.environ.get("PIPELINE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; run scripts/install_browser.sh")
    pytest.skip(f"{CHROMIUM} not installed (scripts/install_browser.sh)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                              headless=True)
        yield chromium
        chromium.close()


def logged_in(browser, token: str | None = TOKEN):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    if token:
        context.add_init_script(f"localStorage.setItem('pipeline.apiToken', {token!r});")
    context.set_default_timeout(20_000)
    return context


def test_dashboard_submits_follows_and_shows_a_job(browser, service, storage_root, tmp_path):
    expect = sync_api.expect
    context = logged_in(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The submit form shows validation errors with their line.
    page.goto(f"{service.url}/ui/submit")
    spec = (storage_root / "examples" / "quickstart.yaml").read_text()
    page.fill("#spec", spec.replace("length_filter: {", "lenght_filter: {"))
    page.fill("#base-dir", "examples")
    page.click("#submit")
    problem = page.locator("#error-list li").first
    expect(problem).to_contain_text("unknown stage 'lenght_filter'")
    expect(problem).to_contain_text("did you mean 'length_filter'")
    line = int(problem.get_attribute("data-line"))
    assert spec.splitlines()[line - 1].strip().startswith("- length_filter")
    expect(page.locator("#gutter .err")).to_have_text(str(line))
    page.screenshot(path=str(tmp_path / "submit-error.png"), full_page=True)

    # A valid spec from the form: the job page follows it live until it succeeds.
    page.fill("#spec", spec)
    page.fill("#submitter", "carol")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/ui/jobs/quickstart-[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#job-state .state")).to_have_text("SUCCEEDED", timeout=90_000)
    funnel = page.locator("#funnel tbody tr")
    expect(funnel).to_have_count(2)
    stage = page.locator('#funnel tr[data-stage="length_filter"]')
    expected = quickstart_counts()
    expect(stage.locator(".kept-count")).to_have_text(str(expected["kept"]))
    expect(stage.locator(".rejected-count")).to_have_text(str(expected["rejected"]))
    expect(page.locator("#reasons li").first).to_contain_text("length_filter: too_short:words")
    expect(page.locator("#throughput polyline")).to_have_count(1)
    expect(page.locator("#logs")).to_contain_text("job quickstart: 3 shards")
    expect(page.locator("#cancel")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    with page.expect_popup() as popup:
        page.click("#report-link")
    report = popup.value
    report.wait_for_load_state()
    expect(report.locator("h1")).to_have_text("Job report")
    expect(report.locator("svg[aria-label=funnel]")).to_have_count(1)

    # The job list shows it, with its state and a full progress bar.
    page.goto(f"{service.url}/ui/")
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    expect(row.locator(".state")).to_have_text("SUCCEEDED")
    expect(row.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "100")
    expect(row).to_contain_text("carol")
    page.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)
    page.select_option("#state-filter", "FAILED")
    expect(page.locator("#empty")).to_be_visible()
    assert errors == []
    context.close()

    # Without the token the pages load, but ask for it instead of showing data.
    anonymous = logged_in(browser, token=None).new_page()
    anonymous.goto(f"{service.url}/ui/")
    expect(anonymous.locator("#token-form")).to_be_visible()
    expect(anonymous.locator("#message")).to_contain_text("needs an API token")
    expect(anonymous.locator("#jobs tbody tr")).to_have_count(0)
