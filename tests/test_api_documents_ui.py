"""The job page's Documents view and what-if sliders in headless Chromium (Debian's
`chromium`, driven by Playwright, as tests/test_api_dashboard.py does): filter, page, open a
document in full, a malformed filter's message; move a threshold and read what the job would
keep, checked against the output's own rows."""

from __future__ import annotations

import os

import pytest

from tests.api_support import TOKEN
from tests.documents_support import (JOB_ID, MAX_WORDS, MIN_WORDS, SLASHED_ID, all_rows,
                                     build_job_output, register_finished_job, start_service)
from tests.test_api_dashboard import browser, logged_in, sync_api  # noqa: F401 (fixture)

SCREENSHOTS = os.environ.get("PIPELINE_SCREENSHOTS")  # a folder to keep the pictures in


@pytest.fixture(scope="module")
def job(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("documents-ui")
    root = tmp / "root"
    output = build_job_output(root)
    with start_service(tmp, root) as running:
        register_finished_job(running, output)
        running.output = output
        yield running


def picture(page, tmp_path, name: str, part: str | None = None) -> None:
    path = os.path.join(SCREENSHOTS or tmp_path, f"{name}.png")
    if part:
        page.locator(part).screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=True)


def open_job_page(browser, job):  # noqa: F811 (the fixture)
    context = logged_in(browser, TOKEN)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{job.url}/ui/jobs/{JOB_ID}")
    return context, page, errors


def test_documents_view_filters_pages_and_opens_a_document(browser, job, tmp_path):  # noqa: F811
    expect = sync_api.expect
    every = all_rows(job.output)
    context, page, errors = open_job_page(browser, job)
    rows = page.locator("#documents tbody tr")

    # First page: the first 50 documents in file order, kept first.
    expect(rows).to_have_count(50)
    expect(page.locator("#doc-page-info")).to_have_text(f"1–50 of {len(every)}")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.docId)") == \
        [r["id"] for r in every[:50]]
    expect(page.locator("#doc-prev")).to_be_disabled()
    page.click("#doc-next")
    expect(page.locator("#doc-page-info")).to_have_text(f"51–100 of {len(every)}")
    assert rows.first.get_attribute("data-doc-id") == every[50]["id"]

    # Rejected by length_filter as too short: the stage comes from the report's funnel.
    page.select_option("#doc-kept", "false")
    expect(page.locator("#doc-stage option[value=length_filter]")).to_have_count(1)
    page.select_option("#doc-stage", "length_filter")
    page.fill("#doc-reason", "too_short")
    page.click("#doc-apply")
    short = [r for r in every if (r.get("reason") or "").startswith("too_short")]
    assert 0 < len(short) < 50
    expect(page.locator("#doc-page-info")).to_have_text(f"1–{len(short)} of {len(short)}")
    expect(rows).to_have_count(len(short))
    expect(rows.first).to_contain_text("length_filter: too_short:words=")
    expect(page.locator("#doc-next")).to_be_disabled()
    picture(page, tmp_path, "documents", "#documents-view")

    # A click opens the document: full text and every column.
    rows.first.click()
    dialog = page.locator("#doc-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#doc-title")).to_have_text(short[0]["id"])
    assert page.locator("#doc-text").text_content() == short[0]["text"]
    expect(page.locator('#doc-columns tr[data-column="n_words"] td')).to_have_text(
        str(short[0]["n_words"]))
    names = page.locator("#doc-columns tr").evaluate_all("rs => rs.map(r => r.dataset.column)")
    assert set(names) == set(short[0]) - {"kept", "text"}
    picture(page, tmp_path, "document")
    page.click("#doc-close")
    expect(dialog).to_be_hidden()

    # A malformed filter: the server's message, no rows.
    page.select_option("#doc-kept", "")
    page.select_option("#doc-stage", "")
    page.fill("#doc-reason", "")
    page.fill("#doc-where", "n_words > 5; drop table x")
    page.click("#doc-apply")
    expect(page.locator("#doc-message")).to_contain_text("unexpected ';'")
    expect(rows).to_have_count(0)

    # A valid one, and the id with slashes opens through its escaped URL.
    page.fill("#doc-where", f"id = '{SLASHED_ID}'")
    page.click("#doc-apply")
    expect(rows).to_have_count(1)
    rows.first.press("Enter")
    expect(page.locator("#doc-title")).to_have_text(SLASHED_ID)
    assert errors == []
    context.close()


def test_whatif_sliders_show_what_other_thresholds_keep(browser, job, tmp_path):  # noqa: F811
    expect = sync_api.expect
    every = all_rows(job.output)
    reached = [r for r in every if r.get("stage") != "url_filter"]
    context, page, errors = open_job_page(browser, job)

    chart = page.locator('.whatif-chart[data-column="n_words"]')
    expect(chart.locator("rect.kept").first).to_be_attached()
    low = chart.locator('label.slider[data-option="min_words"] input')
    high = chart.locator('label.slider[data-option="max_words"] input')
    expect(low).to_have_value(str(MIN_WORDS))
    expect(high).to_have_value(str(MAX_WORDS))
    expect(page.locator("#whatif-result")).to_be_hidden()

    low.fill("35")
    expected = sum(35 <= r["n_words"] <= MAX_WORDS for r in reached)
    expect(page.locator("#whatif-kept-after")).to_have_text(f"{expected:,}")
    expect(page.locator("#whatif-kept-before")).to_have_text(
        f"{sum(r['kept'] for r in every):,}")
    step = page.locator('#whatif-funnel tr[data-stage="length_filter"]')
    expect(step.locator(".kept-now")).to_have_text(f"{expected:,}")
    line = chart.locator("line.threshold.changed")
    expect(line).to_have_count(1)

    high.fill("80")  # both moved: one question with both settings
    expected = sum(35 <= r["n_words"] <= 80 for r in reached)
    expect(page.locator("#whatif-kept-after")).to_have_text(f"{expected:,}")
    picture(page, tmp_path, "whatif", "#whatif-view")

    page.click("#whatif-reset")
    expect(page.locator("#whatif-result")).to_be_hidden()
    expect(low).to_have_value(str(MIN_WORDS))
    expect(chart.locator("line.threshold.changed")).to_have_count(0)
    assert errors == []
    context.close()
