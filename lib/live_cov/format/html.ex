defmodule LiveCov.Format.HTML do
  @moduledoc false
  # A single self-contained HTML page: an index of every file with its coverage
  # percentage, followed by one section per file with per-line hit counts.
  #
  # * no network resources: CSS and JS (from `priv/report/`) are inlined at
  #   compile time, fonts are the system's;
  # * the index links to each file (`#f-N`), every line has an anchor
  #   (`#f-N-L42`), and a small inline script filters the index and sections by
  #   filename or to files with misses (also from the URL:
  #   `coverage.html?filter=calc&missed=1`);
  # * lines: green = executed (count shown), red = executable but never run,
  #   uncoloured = not executable or ignored.
  #
  # Each percentage cell carries `data-file="<filename>"` and the total is in
  # `#total-coverage`, which makes the page easy to check from a headless
  # browser.
  #
  # Options:
  #
  #   * `:title` - page title (default `"LiveCov coverage report"`).
  #   * `:threshold` - percentages at or above it are green (default `90`);
  #     within 25 points below amber, else red.

  @behaviour LiveCov.Format

  import LiveCov.Format.Text, only: [pct: 1, escape_xml: 1]

  @css_path Path.expand("../../../priv/report/report.css", __DIR__)
  @js_path Path.expand("../../../priv/report/report.js", __DIR__)
  @external_resource @css_path
  @external_resource @js_path
  @css File.read!(@css_path)
  # "</script" can never appear inside the inlined script.
  @js @js_path |> File.read!() |> String.replace("</", "<\\/")

  @impl true
  def name, do: :html
  @impl true
  def extension, do: "html"
  @impl true
  def filename, do: "coverage.html"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    title = escape_xml(Keyword.get(opts, :title, "LiveCov coverage report"))
    threshold = Keyword.get(opts, :threshold, 90)
    files = Enum.with_index(stats.files, 1)

    [
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
      "<title>",
      title,
      "</title>\n<style>\n",
      @css,
      "</style>\n</head>\n<body>\n<header id=\"top\">\n<h1>",
      title,
      "</h1>\n<p class=\"meta\">Total <span id=\"total-coverage\" class=\"pct ",
      level(stats.coverage, threshold),
      "\">",
      pct(stats.coverage),
      "%</span> &middot; ",
      Integer.to_string(stats.hits),
      " of ",
      Integer.to_string(stats.sloc),
      " relevant lines covered &middot; ",
      Integer.to_string(length(stats.files)),
      " files &middot; generated ",
      escape_xml(LiveCov.Format.Text.timestamp(stats)),
      "</p>\n",
      missing_note(stats),
      inexact_note(stats),
      "</header>\n",
      index(stats, files, threshold),
      Enum.map(files, &file_section(&1, threshold)),
      "<script>\n",
      @js,
      "</script>\n</body>\n</html>\n"
    ]
  end

  defp inexact_note(%{exact: false}) do
    "<p class=\"meta inexact\">Adaptive coverage (mode: :coverage): hit and missed lines are exact; " <>
      "counts are lower bounds (a line's counter is removed once it has run).</p>\n"
  end

  defp inexact_note(_), do: []

  defp missing_note(%{missing_sources: []}), do: []

  defp missing_note(%{missing_sources: missing}) do
    [
      "<p class=\"meta missing\">Source not found for ",
      Integer.to_string(length(missing)),
      " file(s); their line texts are blank. Use the :compile_root/:runtime_root options to map paths.</p>\n"
    ]
  end

  defp index(stats, files, threshold) do
    [
      "<section id=\"index\">\n<div class=\"controls\">",
      "<input id=\"filter\" type=\"search\" placeholder=\"Filter files…\" aria-label=\"Filter files\">",
      "<label><input id=\"only-missed\" type=\"checkbox\"> only files with missed lines</label>",
      "<span id=\"shown-count\" class=\"meta\"></span></div>\n",
      "<table id=\"files\">\n<thead><tr><th>File</th><th>Coverage</th><th>Relevant</th>",
      "<th>Hit</th><th>Missed</th></tr></thead>\n<tbody>\n",
      Enum.map(files, fn {f, i} ->
        id = "f-#{i}"
        name = escape_xml(f.filename)

        [
          "<tr class=\"",
          level(f.coverage, threshold),
          "\" data-name=\"",
          name,
          "\" data-misses=\"",
          Integer.to_string(f.misses),
          "\" data-target=\"",
          id,
          "\"><td><a href=\"#",
          id,
          "\">",
          name,
          "</a>",
          if(f.missing_source?, do: "<span class=\"missing\">source missing</span>", else: ""),
          "</td><td><span class=\"pct\" data-file=\"",
          name,
          "\">",
          pct(f.coverage),
          "%</span>",
          bar(f.coverage),
          "</td><td>",
          Integer.to_string(f.sloc),
          "</td><td>",
          Integer.to_string(f.hits),
          "</td><td>",
          Integer.to_string(f.misses),
          "</td></tr>\n"
        ]
      end),
      "</tbody>\n<tfoot><tr class=\"",
      level(stats.coverage, threshold),
      "\"><td>Total</td><td><span class=\"pct\">",
      pct(stats.coverage),
      "%</span>",
      bar(stats.coverage),
      "</td><td>",
      Integer.to_string(stats.sloc),
      "</td><td>",
      Integer.to_string(stats.hits),
      "</td><td>",
      Integer.to_string(stats.misses),
      "</td></tr></tfoot>\n</table>\n</section>\n"
    ]
  end

  defp bar(cov) do
    ["<span class=\"bar\"><span style=\"width:", pct(cov), "%\"></span></span>"]
  end

  defp file_section({f, i}, threshold) do
    id = "f-#{i}"

    [
      "<section class=\"src-file ",
      level(f.coverage, threshold),
      "\" id=\"",
      id,
      "\">\n<h2>",
      escape_xml(f.filename),
      " <span class=\"pct\">",
      pct(f.coverage),
      "%</span>",
      if(f.missing_source?, do: "<span class=\"missing\">source missing</span>", else: ""),
      "<a class=\"back\" href=\"#top\">&uarr; index</a></h2>\n",
      "<table class=\"code\"><tbody>\n",
      lines(f.source, id),
      "</tbody></table>\n</section>\n"
    ]
  end

  defp lines(lines, id) do
    texts = lines |> Enum.map(& &1.source) |> LiveCov.Format.Text.escape_xml_lines()
    anchor = id <> "-L"
    rows(lines, texts, anchor, 1, [])
  end

  defp rows([], _texts, _anchor, _n, acc), do: Enum.reverse(acc)

  defp rows([%{coverage: c} | lines], [text | texts], anchor, n, acc) do
    ln = Integer.to_string(n)

    {open, count} =
      case c do
        nil -> {"<tr id=\"", ""}
        0 -> {"<tr class=\"m\" id=\"", "0"}
        c -> {"<tr class=\"h\" id=\"", Integer.to_string(c)}
      end

    row = [
      open,
      anchor,
      ln,
      "\"><td class=\"n\"><a href=\"#",
      anchor,
      ln,
      "\">",
      ln,
      "</a></td><td class=\"c\">",
      count,
      "</td><td class=\"s\">",
      text,
      "</td></tr>\n"
    ]

    rows(lines, texts, anchor, n + 1, [row | acc])
  end

  defp level(cov, threshold) do
    cond do
      cov >= threshold -> "cov-high"
      cov >= threshold - 25 -> "cov-mid"
      true -> "cov-low"
    end
  end
end
