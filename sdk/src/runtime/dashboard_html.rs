//! The dashboard's pages, rendered from one [`Observation`]: plain HTML with
//! inline CSS and SVG, reloading itself, so any browser shows it with nothing
//! to build or download.

use super::dashboard::Page;
use rudask_core::protocol::DatasetInfo;
use rudask_core::scheduler::{FunctionProgress, Observation, TaskRecord, WorkerView};
use std::fmt::Write;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}\
header a{color:#cfd8e8;text-decoration:none}header a:hover{color:#fff}header b{font-size:18px}\
main{padding:16px 24px}section{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0002}\
h2{font-size:16px;margin:0 0 10px}table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2}th{color:#5b6475;font-weight:600}\
.num{text-align:right;font-variant-numeric:tabular-nums}.cards{display:flex;gap:12px;flex-wrap:wrap}\
.card{background:#fff;border-radius:6px;padding:10px 16px;min-width:110px;box-shadow:0 1px 2px #0002}\
.card div{font-size:22px;font-weight:600}.card span{font-size:12px;color:#5b6475}\
.bar{background:#eceef2;border-radius:3px;height:12px;width:220px;display:flex;overflow:hidden}\
.bar i{display:block;height:100%}.empty{color:#8a93a5;font-style:italic}";

/// Colours of task functions in the stream and progress bars.
const PALETTE: [&str; 8] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"];

/// The page for `page` (the overview shows every part).
pub(crate) fn render(page: Page, o: &Observation) -> String {
    let title = match page {
        Page::Overview => "Overview",
        Page::Workers => "Workers",
        Page::Stream => "Task stream",
        Page::Progress => "Progress",
        Page::Datasets => "Datasets",
    };
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\
         <title>rudask · {title}</title><style>{STYLE}</style></head><body><header><b>rudask</b>\
         <a href=\"/\">Overview</a><a href=\"/workers\">Workers</a><a href=\"/stream\">Task stream</a>\
         <a href=\"/progress\">Progress</a><a href=\"/datasets\">Datasets</a><a href=\"/metrics\">Metrics</a>\
         <a href=\"/api/overview.json\">JSON</a></header><main>"
    );
    if page == Page::Overview {
        summary(&mut h, o);
    }
    if matches!(page, Page::Overview | Page::Workers) {
        workers(&mut h, &o.workers);
    }
    if matches!(page, Page::Overview | Page::Stream) {
        stream(&mut h, o);
    }
    if matches!(page, Page::Overview | Page::Progress) {
        progress(&mut h, &o.functions);
    }
    if matches!(page, Page::Overview | Page::Datasets) {
        datasets(&mut h, &o.datasets);
    }
    h.push_str("</main></body></html>");
    h
}

fn summary(h: &mut String, o: &Observation) {
    let slots: u32 = o.workers.iter().map(|w| w.nthreads).sum();
    let cards = [
        ("workers", o.workers.len().to_string()),
        ("slots", slots.to_string()),
        ("clients", o.clients.to_string()),
        ("processing", o.tasks.processing.to_string()),
        ("in memory", o.tasks.memory.to_string()),
        ("waiting", (o.tasks.waiting + o.tasks.queued + o.tasks.no_worker).to_string()),
        ("erred", o.tasks.erred.to_string()),
        ("transitions", o.transitions.to_string()),
        ("datasets", o.datasets.len().to_string()),
    ];
    h.push_str("<section class=\"cards\">");
    for (label, value) in cards {
        let _ = write!(h, "<div class=\"card\"><div>{value}</div><span>{label}</span></div>");
    }
    h.push_str("</section>");
}

fn workers(h: &mut String, workers: &[WorkerView]) {
    h.push_str("<section><h2>Workers</h2>");
    if workers.is_empty() {
        h.push_str("<p class=\"empty\">No worker is connected.</p></section>");
        return;
    }
    let most = workers
        .iter()
        .map(|w| w.memory.max(w.managed_bytes).max(w.memory_limit))
        .max()
        .unwrap_or(0)
        .max(1);
    h.push_str(
        "<table><tr><th>Worker</th><th>Address</th><th>Slots busy</th><th class=\"num\">Processing</th>\
         <th class=\"num\">Results</th><th>Memory (managed / process, of the limit)</th><th class=\"num\">Managed</th>\
         <th class=\"num\">Process</th><th class=\"num\">Limit</th><th class=\"num\">Spilled</th></tr>",
    );
    for w in workers {
        let busy = w.processing.saturating_sub(w.long_running).min(w.nthreads as usize);
        let slots = bar(&[(busy as f64 / f64::from(w.nthreads.max(1)), "#4e79a7")]);
        let managed = w.managed_bytes as f64 / most as f64;
        let unmanaged = w.memory.saturating_sub(w.managed_bytes) as f64 / most as f64;
        let memory = bar(&[(managed, "#59a14f"), (unmanaged, "#bab0ac")]);
        let limit = if w.memory_limit == 0 { "none".to_string() } else { bytes(w.memory_limit) };
        let _ = write!(
            h,
            "<tr><td>{}{}</td><td>{}</td><td>{slots} {busy}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{memory}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{limit}</td>\
             <td class=\"num\">{}</td></tr>",
            esc(&w.name),
            if w.paused { " (paused)" } else { "" },
            esc(&w.data_addr),
            w.nthreads,
            w.processing,
            w.keys,
            bytes(w.managed_bytes),
            bytes(w.memory),
            bytes(w.spilled_bytes),
        );
    }
    h.push_str("</table></section>");
}

/// A horizontal bar of coloured parts, each a fraction of the whole.
fn bar(parts: &[(f64, &str)]) -> String {
    let mut s = String::from("<span class=\"bar\" style=\"display:inline-flex\">");
    for (fraction, colour) in parts {
        let pct = (fraction.clamp(0.0, 1.0) * 100.0).round();
        let _ = write!(s, "<i style=\"width:{pct}%;background:{colour}\"></i>");
    }
    s.push_str("</span>");
    s
}

fn colour(function: &str) -> &'static str {
    let h = function.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[h as usize % PALETTE.len()]
}

fn stream(h: &mut String, o: &Observation) {
    h.push_str("<section><h2>Task stream</h2>");
    let Some(first) = o.stream.iter().map(|t| t.start_us).min() else {
        h.push_str("<p class=\"empty\">No task has finished yet.</p></section>");
        return;
    };
    let mut rows: Vec<&str> = o.workers.iter().map(|w| w.name.as_str()).collect();
    for t in &o.stream {
        if !rows.contains(&t.worker.as_str()) {
            rows.push(&t.worker);
        }
    }
    let last = o.stream.iter().map(|t| t.stop_us).max().unwrap_or(first).max(first + 1);
    let (label_w, width, row_h) = (140.0, 1000.0, 22.0);
    let scale = (width - label_w - 10.0) / (last - first) as f64;
    let height = row_h * rows.len() as f64 + 20.0;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px\" font-size=\"11\">"
    );
    for (i, name) in rows.iter().enumerate() {
        let y = i as f64 * row_h;
        let label = if name.is_empty() { "(gone)" } else { name };
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{}\">{}</text><line x1=\"{label_w}\" x2=\"{width}\" y1=\"{}\" y2=\"{}\" stroke=\"#eceef2\"/>",
            y + 15.0,
            esc(label),
            y + row_h,
            y + row_h
        );
    }
    for t in &o.stream {
        let TaskRecord { function, worker, start_us, stop_us } = t;
        let row = rows.iter().position(|r| r == worker).unwrap_or(0) as f64;
        let x = label_w + (start_us - first) as f64 * scale;
        let w = ((stop_us - start_us) as f64 * scale).max(1.0);
        let _ = write!(
            h,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} ({} µs)</title></rect>",
            row * row_h + 3.0,
            row_h - 6.0,
            colour(function),
            esc(function),
            stop_us - start_us
        );
    }
    let _ = write!(
        h,
        "<text x=\"{label_w}\" y=\"{}\" fill=\"#5b6475\">last {} tasks over {:.3} s</text></svg></section>",
        height - 4.0,
        o.stream.len(),
        (last - first) as f64 / 1e6
    );
}

fn progress(h: &mut String, functions: &[FunctionProgress]) {
    h.push_str("<section><h2>Progress by function</h2>");
    if functions.is_empty() {
        h.push_str("<p class=\"empty\">No task yet.</p></section>");
        return;
    }
    h.push_str(
        "<table><tr><th>Function</th><th></th><th class=\"num\">Done</th><th class=\"num\">In memory</th>\
         <th class=\"num\">Processing</th><th class=\"num\">Waiting</th><th class=\"num\">Erred</th></tr>",
    );
    for f in functions {
        let s = &f.states;
        let waiting = s.waiting + s.queued + s.no_worker + s.released;
        let total = (f.done as usize + s.processing + waiting + s.erred).max(1) as f64;
        let progress = bar(&[
            (f.done as f64 / total, colour(&f.function)),
            (s.erred as f64 / total, "#e15759"),
            (s.processing as f64 / total, "#9fb4d0"),
        ]);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{progress}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{waiting}</td><td class=\"num\">{}</td></tr>",
            esc(&f.function),
            f.done,
            s.memory,
            s.processing,
            s.erred
        );
    }
    h.push_str("</table></section>");
}

fn datasets(h: &mut String, datasets: &[DatasetInfo]) {
    h.push_str("<section><h2>Published datasets</h2>");
    if datasets.is_empty() {
        h.push_str("<p class=\"empty\">No dataset is published.</p></section>");
        return;
    }
    h.push_str(
        "<table><tr><th>Name</th><th>Type</th><th class=\"num\">Partitions</th><th class=\"num\">Size</th>\
         <th>Where</th><th>Owner</th><th>Problem</th></tr>",
    );
    for d in datasets {
        let place = match (d.lazy, d.in_memory, d.on_disk) {
            (true, _, _) => "graph (computed on get)",
            (false, true, true) => "memory and disk",
            (false, true, false) => "memory",
            (false, false, true) => "disk",
            (false, false, false) => "lost",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{place}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.name),
            esc(&d.type_tag),
            d.partitions,
            bytes(d.nbytes),
            esc(&d.owner),
            esc(d.damaged.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table></section>");
}

/// `n` bytes for people: `512 B`, `1.5 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rudask_core::scheduler::StateCounts;

    fn observation() -> Observation {
        Observation {
            now_us: 2_000,
            tasks: StateCounts { memory: 3, ..Default::default() },
            transitions: 9,
            clients: 1,
            workers: vec![WorkerView {
                name: "w<0>".into(),
                data_addr: "tcp://127.0.0.1:1".into(),
                nthreads: 2,
                processing: 1,
                long_running: 0,
                keys: 3,
                managed_bytes: 3 * 1024,
                memory: 10 * 1024 * 1024,
                memory_limit: 100 * 1024 * 1024,
                spilled_bytes: 5 * 1024,
                paused: true,
            }],
            functions: vec![FunctionProgress {
                function: "inc".into(),
                done: 3,
                states: StateCounts { memory: 3, ..Default::default() },
            }],
            stream: vec![TaskRecord {
                function: "inc".into(),
                worker: "w<0>".into(),
                start_us: 1_000,
                stop_us: 1_500,
            }],
            datasets: Vec::new(),
            plugin_failures: 0,
        }
    }

    #[test]
    fn the_overview_shows_every_part_and_escapes_names() {
        let page = render(Page::Overview, &observation());
        assert!(page.contains("<td>w&lt;0&gt; (paused)</td>"), "{page}");
        assert!(!page.contains("w<0>"));
        assert!(page.contains("<td>inc</td>") && page.contains("<rect"));
        assert!(page.contains("No dataset is published."));
        assert!(page.contains("10.0 MiB") && page.contains("3.0 KiB"));
        assert!(page.contains("100.0 MiB") && page.contains("5.0 KiB"), "limit and spilled");
    }

    #[test]
    fn a_part_page_shows_only_its_part() {
        let page = render(Page::Datasets, &observation());
        assert!(page.contains("Published datasets") && !page.contains("Task stream</h2>"));
        assert_eq!(bytes(512), "512 B");
    }
}
