//! The page: HTML escaping, the skeleton with its inline style and check script, and the claims
//! table.

use std::fmt::Write as _;
use std::path::Path;

use super::ExperimentView;
use super::claims::{CLAIMS, measured_value};
use super::section::{experiment_section, testbed_label};

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and quoted
/// attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// Inline style: the page loads nothing from anywhere.
const STYLE: &str = "body{font-family:sans-serif;max-width:1150px;margin:1em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#eee}img{max-width:100%;border:1px solid #ccc}.missing{color:#a00}\
.honesty{background:#fff4d6;border:1px solid #e0b84c;padding:.5em}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}\
#page-check{color:#666;font-size:small}";

/// Records every error the page raises (capture phase: also images that fail to decode) and,
/// on `load`, writes into `#page-check` how many errors there were and how many images decoded.
const CHECK_SCRIPT: &str = "(function(){var errors=[];\
window.addEventListener('error',function(e){errors.push(String(e.message||('failed to load '+((e.target&&e.target.alt)||e.type))));},true);\
window.addEventListener('load',function(){var imgs=document.images,ok=0;\
for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}\
var el=document.getElementById('page-check');\
el.setAttribute('data-errors',String(errors.length));el.setAttribute('data-images-loaded',String(ok));\
el.setAttribute('data-images-total',String(imgs.length));\
el.textContent=errors.length+' errors, '+ok+'/'+imgs.length+' images loaded'+(errors.length?': '+errors.join('; '):'');});})();";

/// The whole page.
pub fn page(results_root: &Path, views: &[ExperimentView]) -> String {
    let root = escape_html(&results_root.display().to_string());
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>NAAM reproduction report: {root}</title>\n<style>{STYLE}</style>\n<script>{CHECK_SCRIPT}</script>\n</head>\n<body>\n<h1>NAAM reproduction report</h1>\n<p>Results folder <code>{root}</code>. Everything below is read from the files in it: each experiment shows its newest complete run (else its newest run).</p>\n"
    );
    out += "<p class=\"honesty\"><b>Where the numbers come from.</b> Each measured value was measured on the testbed named beside it (see each run's provenance). An emulated NIC on one machine — a laptop or a small VM — shows shapes and mechanisms, not hardware results, and a simulated testbed models time from a cost profile: neither is comparable with the paper's numbers, which come from BlueField-2 hardware. NAAM here is reconstructed from the paper's abstract.</p>\n";
    out += &claims_table(views);
    out += "<h2>Experiments</h2>\n<ul>\n";
    for view in views {
        let id = view.experiment.as_str();
        let _ = writeln!(out, "<li><a href=\"#exp-{id}\">{id}</a></li>");
    }
    out += "</ul>\n";
    for view in views {
        out += &experiment_section(view, results_root);
    }
    out + "<p id=\"page-check\" data-errors=\"-1\">page check did not run</p>\n</body>\n</html>\n"
}

fn claims_table(views: &[ExperimentView]) -> String {
    let mut out = String::from(
        "<h2>Claims</h2>\n<table class=\"claims\">\n<tr><th>#</th><th>claim (paper abstract)</th><th>experiment</th><th>what we measure</th><th>paper</th><th>measured here</th><th>measured on</th></tr>\n",
    );
    for claim in &CLAIMS {
        let view = views.iter().find(|v| v.experiment == claim.experiment);
        let (measured, testbed) = match view {
            Some(view) => (
                measured_value(claim, view),
                view.run.as_ref().map_or("—".to_string(), testbed_label),
            ),
            None => ("not measured".to_string(), "—".to_string()),
        };
        let id = claim.experiment.as_str();
        let _ = writeln!(
            out,
            "<tr data-claim=\"{}\"><td>{}</td><td>{}</td><td><a href=\"#exp-{id}\">{id}</a></td><td>{}</td><td>{}</td><td class=\"measured\">{}</td><td>{}</td></tr>",
            claim.id,
            claim.id,
            escape_html(claim.claim),
            escape_html(claim.measured_what),
            escape_html(claim.paper_value),
            escape_html(&measured),
            escape_html(&testbed)
        );
    }
    out + "</table>\n"
}
