defmodule LiveCov.Gateway.DashboardFiles do
  @moduledoc false
  # The dashboard's report pieces (`LiveCov.Gateway.Dashboard`): totals, the files table and
  # the source view with per-line hit counts.

  import LiveCov.Gateway.Html

  @doc "Totals of a report: coverage, relevant lines, hits, misses."
  def totals(kind, name, s) do
    [
      "<div class=\"totals\" data-",
      kind,
      "=\"",
      esc(name),
      "\">",
      "<div class=\"total\"><span class=\"label\">coverage</span>",
      pct_span("id=\"total-coverage\"", s.coverage),
      bar(s.coverage),
      "</div>",
      total("relevant lines", "sloc", s.sloc),
      total("hit", "hits", s.hits),
      total("missed", "misses", s.misses),
      total("files", "files", s.files),
      "</div>"
    ]
  end

  # One count of the totals: its label, and the value in the span `id="total-<id>"`.
  defp total(label, id, n) do
    [
      "<div class=\"total\"><span class=\"label\">",
      label,
      "</span><span id=\"total-",
      id,
      "\">",
      Integer.to_string(n),
      "</span></div>"
    ]
  end

  @doc "The files table of a report; `href` gives each file's source link."
  def files_table(files, href, id \\ "files") do
    rows =
      for f <- files do
        [
          "<tr class=\"",
          cov_class(f.coverage),
          "\" data-name=\"",
          esc(f.filename),
          "\">",
          "<td>",
          link(href.(f), f.filename),
          "</td>",
          "<td class=\"num\" data-value=\"",
          pct(f.coverage),
          "\">",
          pct_span(["data-file=\"", esc(f.filename), "\""], f.coverage),
          "</td>",
          "<td>",
          bar(f.coverage),
          "</td>",
          num_td("sloc", f.sloc),
          num_td("hits", f.hits),
          num_td("misses", f.misses),
          "</tr>"
        ]
      end

    table(
      id,
      [
        {"file", :text},
        {"coverage", :num},
        {"", nil},
        {"relevant lines", :num},
        {"hit", :num},
        {"missed", :num}
      ],
      rows,
      "no files"
    )
  end

  @doc "A file's source with per-line hit counts."
  def source_view(crumbs, f) do
    rows =
      for {l, n} <- Enum.with_index(f.source, 1) do
        {class, hits} =
          case l.coverage do
            nil -> {"line", ""}
            0 -> {"line miss", "0"}
            c -> {"line hit", Integer.to_string(c)}
          end

        [
          "<tr class=\"",
          class,
          "\" id=\"L",
          Integer.to_string(n),
          "\"><td class=\"ln\">",
          Integer.to_string(n),
          "</td><td class=\"hits\">",
          hits,
          "</td><td class=\"code\">",
          esc(l.source),
          "</td></tr>"
        ]
      end

    note =
      if f.missing_source?,
        do:
          "<p class=\"warn\">The source text is not shown: the file is not readable under the gateway's configured source_roots. Line counts are still listed.</p>",
        else: ""

    [
      "<nav class=\"crumbs\">",
      crumbs,
      "</nav><h1 class=\"mono\">",
      esc(f.filename),
      "</h1>",
      totals("file", f.filename, %{
        coverage: f.coverage,
        sloc: f.sloc,
        hits: f.hits,
        misses: f.misses,
        files: 1
      }),
      note,
      "<table class=\"source\" id=\"source\"><tbody>",
      rows,
      "</tbody></table>"
    ]
  end
end
