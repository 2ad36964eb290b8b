//! One experiment's section: its figure, validity counts, headline numbers per series,
//! provenance per session and the commands that regenerate it.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use naam_plan::{Testbed, Variant};
use naam_results::Provenance;

use super::claims::{ms_list, ops_text};
use super::html::escape_html as esc;
use super::{ExperimentView, RunView};

/// The testbed a run's numbers come from, in words: kind, NIC (emulated, real, simulated with
/// its cost profile), machine, and whether the data is synthetic.
pub fn testbed_label(run: &RunView) -> String {
    let provenance = match &run.provenance {
        Ok(p) => p,
        Err(why) => return format!("provenance unreadable: {why}"),
    };
    let machine = provenance
        .sessions
        .last()
        .map_or("machine unknown".to_string(), |s| s.host.describe());
    let kind = &provenance.testbed;
    let mut label = match &run.plan.testbed {
        Testbed::Sim { profile, .. } => format!(
            "{kind} testbed: NIC, cores and links simulated with cost profile `{profile}` (times modelled, not measured); the simulator ran on {machine}"
        ),
        _ if provenance.nic_emulated => {
            format!("{kind} testbed on {machine} (NIC emulated, not hardware)")
        }
        _ => format!("{kind} testbed with real NICs, driven from {machine}"),
    };
    if is_synthetic(provenance) {
        label += " — SYNTHETIC DATA from the test executor, not a measurement";
    }
    label
}

fn is_synthetic(provenance: &Provenance) -> bool {
    provenance
        .sessions
        .iter()
        .any(|s| s.executor.starts_with("synthetic"))
}

/// The section of one experiment of the results folder `results_root`.
pub fn experiment_section(view: &ExperimentView, results_root: &Path) -> String {
    let id = view.experiment.as_str();
    let mut out = format!("<section id=\"exp-{id}\">\n<h2>{id}</h2>\n");
    match &view.run {
        Ok(run) => {
            let _ = write!(
                out,
                "<p class=\"run\">{} run <code>{}</code> · {}</p>\n<p class=\"testbed\">Numbers from: {}</p>\n",
                if run.complete { "Complete" } else { "PARTIAL" },
                esc(&run.dir.display().to_string()),
                esc(&run.plan.title),
                esc(&testbed_label(run))
            );
            if run.other_runs > 0 {
                let _ = writeln!(
                    out,
                    "<p class=\"other-runs\">{} other run(s) of {id} in this folder are not shown (<code>naam status</code> lists them).</p>",
                    run.other_runs
                );
            }
            out += &figure_html(id, run);
            out += &validity_html(id, run);
            out += &series_html(run);
            out += &provenance_html(run);
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "<p class=\"missing\" data-missing=\"{id}\">No run to show: {}</p>",
                esc(why)
            );
        }
    }
    out += &commands_html(view, results_root);
    out += "</section>\n";
    out
}

fn figure_html(id: &str, run: &RunView) -> String {
    match &run.figure_png {
        Ok(png) => format!(
            "<figure><img alt=\"figure of {id}\" src=\"data:image/png;base64,{}\"><figcaption>Drawn from the run's files when this page was written.</figcaption></figure>\n",
            base64::engine::general_purpose::STANDARD.encode(png)
        ),
        Err(why) => format!(
            "<p class=\"missing\" data-missing-figure=\"{id}\">No figure: {}</p>\n",
            esc(why)
        ),
    }
}

fn validity_html(id: &str, run: &RunView) -> String {
    let d = &run.digest;
    let mut out = format!(
        "<table class=\"validity\" data-experiment=\"{id}\" data-valid=\"{}\" data-saturated=\"{}\" data-invalid=\"{}\" data-missing=\"{}\">\n<tr><th>valid</th><th>saturated (valid)</th><th>invalid</th><th>missing</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n</table>\n",
        d.points_valid,
        d.points_saturated,
        d.points_invalid,
        d.points_missing,
        d.points_valid,
        d.points_saturated,
        d.points_invalid,
        d.points_missing
    );
    if !d.reasons.is_empty() {
        out += "<ul class=\"reasons\">\n";
        for (kind, count) in &d.reasons {
            let _ = writeln!(out, "<li>invalid ×{count}: {}</li>", esc(kind));
        }
        out += "</ul>\n";
    }
    out
}

fn series_html(run: &RunView) -> String {
    let mut out = String::from(
        "<table class=\"series\">\n<tr><th>series</th><th>complete points</th><th>best valid throughput</th><th>shift by rules</th><th>first reaction</th><th>≥ 90 % of completions moved</th></tr>\n",
    );
    for s in &run.digest.series {
        let best = s.throughput_ops_per_s_max.map_or("—".to_string(), ops_text);
        let _ = writeln!(
            out,
            "<tr data-series=\"{}\" data-points=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.series),
            s.points,
            esc(&s.series),
            s.points,
            esc(&best),
            esc(&ms_list(&s.shift_rules_ms)),
            esc(&first_reaction(s)),
            esc(&naam_results::digest::shifted_list(s))
        );
    }
    out + "</table>\n"
}

/// `first rule change 12 ms` (NAAM) or `first migration 30 ms` (iPipe); empty without a hog.
fn first_reaction(s: &naam_results::digest::SeriesDigest) -> String {
    s.mechanism.map_or(String::new(), |m| {
        format!("{} {}", m.first_reaction(), ms_list(&s.reaction_first_ms))
    })
}

fn provenance_html(run: &RunView) -> String {
    let p = match &run.provenance {
        Ok(p) => p,
        Err(why) => {
            return format!(
                "<p class=\"missing\">Provenance unreadable: {}</p>\n",
                esc(why)
            );
        }
    };
    let mut out = format!(
        "<details open><summary>Provenance</summary>\n<p>variant {} · testbed kind {} · NIC emulated: {} · manifest <code>{}</code> · base seed {} · configuration <code>{}</code></p>\n<table class=\"sessions\">\n<tr><th>session</th><th>code</th><th>machine</th><th>executor</th><th>toolchain</th><th>started</th><th>ended</th></tr>\n",
        esc(&p.variant),
        esc(&p.testbed),
        if p.nic_emulated { "yes" } else { "no" },
        esc(&p.manifest),
        p.base_seed,
        esc(&p.config_hash)
    );
    for s in &p.sessions {
        let code = format!(
            "{}{}",
            s.code.commit.as_deref().unwrap_or("not a git checkout"),
            if s.code.dirty { " +dirty" } else { "" }
        );
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.index,
            esc(&code),
            esc(&s.host.describe()),
            esc(&s.executor),
            esc(&s.toolchain),
            esc(&s.started_at),
            esc(s.ended_at.as_deref().unwrap_or("did not end"))
        );
    }
    out + "</table>\n</details>\n"
}

/// The commands that measure the experiment again, redraw its figure and this page.
fn commands_html(view: &ExperimentView, results_root: &Path) -> String {
    let id = view.experiment.as_str();
    let root = results_root.display().to_string();
    let results = if root == naam_results::RESULTS_DIR {
        String::new()
    } else {
        format!(" --results {}", esc(&root))
    };
    let (manifest, quick) = match &view.run {
        Ok(run) => (
            run.provenance
                .as_ref()
                .map_or(format!("experiments/{id}.toml"), |p| p.manifest.clone()),
            run.plan.variant == Variant::Quick,
        ),
        Err(_) => (format!("experiments/{id}.toml"), true),
    };
    format!(
        "<p>Regenerate:</p>\n<pre class=\"commands\">naam run {}{}{results} --plot   # measure (resumes a partial run; --fresh for a new one)\nnaam plot {id}{results}   # redraw figures/{id}.png and .svg from the results\nnaam report {}   # this page</pre>\n",
        esc(&manifest),
        if quick { " --quick" } else { "" },
        esc(&root)
    )
}
