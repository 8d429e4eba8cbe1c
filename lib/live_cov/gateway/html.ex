defmodule LiveCov.Gateway.Html do
  @moduledoc false
  # Small HTML helpers of the dashboard (`LiveCov.Gateway.Dashboard`): escaping, the page
  # layout, numbers, times, coverage bars and the coverage-over-time chart (inline SVG; no
  # inline styles or scripts, so the page runs under a strict content security policy).

  alias LiveCov.Gateway.Assets

  @doc """
  Escapes text for HTML content and attribute values (the escaping of the HTML report:
  `LiveCov.Format.Text.escape_xml/1`).
  """
  @spec esc(term) :: String.t()
  def esc(nil), do: ""

  def esc(text), do: text |> to_string() |> LiveCov.Format.Text.escape_xml()

  @doc "A whole page."
  @spec page(String.t(), String.t(), iodata) :: binary
  def page(title, heading, body) do
    IO.iodata_to_binary([
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
      "<title>",
      esc(heading),
      " · ",
      esc(title),
      "</title><link rel=\"icon\" href=\"data:,\">",
      "<link rel=\"stylesheet\" href=\"/assets/gateway.css?v=",
      Assets.version("gateway.css"),
      "\"><script src=\"/assets/gateway.js?v=",
      Assets.version("gateway.js"),
      "\" defer></script></head><body>",
      "<header><a class=\"brand\" href=\"/\">",
      esc(title),
      "</a><label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\"> auto-refresh</label></header><main>",
      body,
      "</main><footer>LiveCov gateway · page generated <time data-ms=\"",
      Integer.to_string(System.os_time(:millisecond)),
      "\">",
      iso(System.os_time(:millisecond)),
      "</time></footer></body></html>\n"
    ])
  end

  @doc "A link with escaped text and href."
  def link(href, text, attrs \\ ""),
    do: ["<a href=\"", esc(href), "\"", attrs, ">", esc(text), "</a>"]

  @doc "A path with percent-encoded segments and query."
  def path(segments, query \\ []) do
    p = "/" <> Enum.map_join(segments, "/", &URI.encode(&1, fn c -> URI.char_unreserved?(c) end))
    q = for {k, v} <- query, v != nil, do: {k, v}
    if q == [], do: p, else: p <> "?" <> URI.encode_query(q, :rfc3986)
  end

  @doc "A percentage with one decimal (as the JSON API's number)."
  def pct(nil), do: "–"
  def pct(f) when is_float(f), do: :erlang.float_to_binary(f, decimals: 1)
  def pct(i) when is_integer(i), do: pct(i / 1)

  @doc "The CSS class of a coverage value."
  def cov_class(nil), do: "cov-none"
  def cov_class(c) when c >= 80, do: "cov-high"
  def cov_class(c) when c >= 50, do: "cov-mid"
  def cov_class(_), do: "cov-low"

  @doc "A coverage percentage with its attributes (`key`: iodata such as `data-file=\"...\"`)."
  def pct_span(key, coverage) do
    [
      "<span class=\"pct ",
      cov_class(coverage),
      "\" ",
      key,
      " data-coverage=\"",
      pct(coverage),
      "\">",
      pct(coverage),
      "%</span>"
    ]
  end

  @doc "A coverage bar (SVG, 100 units wide)."
  def bar(nil), do: ""

  def bar(coverage) do
    w = :erlang.float_to_binary(min(100.0, max(0.0, coverage / 1)), decimals: 1)

    [
      "<svg class=\"bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\">",
      "<rect class=\"bar-bg\" width=\"100\" height=\"8\"/><rect class=\"bar-fg ",
      cov_class(coverage),
      "\" width=\"",
      w,
      "\" height=\"8\"/></svg>"
    ]
  end

  @doc "A time (Unix ms) as ISO 8601 UTC, with `data-ms` for the script's local rendering."
  def time(nil), do: "never"
  def time(ms), do: ["<time data-ms=\"", Integer.to_string(ms), "\">", iso(ms), "</time>"]

  @doc "Unix ms as `2024-05-01 12:00:00Z`."
  def iso(ms) do
    ms
    |> DateTime.from_unix!(:millisecond)
    |> DateTime.truncate(:second)
    |> DateTime.to_iso8601()
    |> String.replace("T", " ")
  end

  @doc "A table: `headers` are `{label, sort}` (`:num`, `:text` or nil), rows are iodata `<tr>`s."
  def table(id, headers, rows, empty \\ "nothing yet") do
    head =
      for {label, sort} <- headers do
        if sort,
          do: ["<th data-sort=\"", Atom.to_string(sort), "\">", esc(label), "</th>"],
          else: ["<th>", esc(label), "</th>"]
      end

    body =
      if rows == [],
        do: [
          "<tr class=\"empty\"><td colspan=\"",
          Integer.to_string(length(headers)),
          "\">",
          esc(empty),
          "</td></tr>"
        ],
        else: rows

    [
      "<table class=\"grid\" id=\"",
      esc(id),
      "\"><thead><tr>",
      head,
      "</tr></thead><tbody>",
      body,
      "</tbody></table>"
    ]
  end

  @doc "A filter box for a table's rows (by their `data-name`)."
  def filter(table_id) do
    [
      "<div class=\"filter-box\"><input type=\"search\" class=\"filter\" placeholder=\"filter files…\" data-table=\"",
      esc(table_id),
      "\" aria-label=\"filter\"> <span class=\"meta shown-count\" data-table=\"",
      esc(table_id),
      "\"></span></div>"
    ]
  end

  @doc """
  The coverage-over-time chart of finished runs: `series` is `[{service, [{run, coverage}]}]`
  with runs in time order.
  """
  def chart([]),
    do: "<p class=\"meta\">No finished runs yet: POST /runs, then POST /runs/:id/finish.</p>"

  def chart(series) do
    runs =
      series
      |> Enum.flat_map(fn {_, pts} -> Enum.map(pts, &elem(&1, 0)) end)
      |> Enum.uniq_by(& &1.id)
      |> Enum.sort_by(&{&1.finished_at, &1.id})

    index = runs |> Enum.with_index() |> Map.new(fn {r, i} -> {r.id, i} end)
    {w, h, left, top, bottom} = {760, 220, 40, 10, 30}
    span = max(length(runs) - 1, 1)
    x = fn i -> left + div((w - left - 40) * i, span) end
    y = fn c -> top + round((h - top - bottom) * (100 - c) / 100) end

    grid =
      for c <- [0, 25, 50, 75, 100] do
        [
          "<line class=\"grid-line\" x1=\"",
          int(left),
          "\" x2=\"",
          int(w - 40),
          "\" y1=\"",
          int(y.(c)),
          "\" y2=\"",
          int(y.(c)),
          "\"/>",
          "<text class=\"axis\" x=\"",
          int(left - 6),
          "\" y=\"",
          int(y.(c) + 4),
          "\">",
          int(c),
          "%</text>"
        ]
      end

    lines =
      for {{service, pts}, n} <- Enum.with_index(series) do
        coords = Enum.map(pts, fn {r, c} -> {x.(index[r.id]), y.(c), r, c} end)
        poly = Enum.map_join(coords, " ", fn {px, py, _, _} -> "#{px},#{py}" end)

        [
          "<g class=\"series series-",
          int(rem(n, 6)),
          "\" data-service=\"",
          esc(service),
          "\">",
          "<polyline points=\"",
          poly,
          "\"/>",
          for {px, py, r, c} <- coords do
            [
              "<circle cx=\"",
              int(px),
              "\" cy=\"",
              int(py),
              "\" r=\"4\" data-run=\"",
              esc(r.id),
              "\" data-coverage=\"",
              pct(c),
              "\"><title>",
              esc("#{service} · #{r.name} (#{r.id}) · #{pct(c)}%"),
              "</title></circle>"
            ]
          end,
          "</g>"
        ]
      end

    # At most about ten run labels under the axis.
    every = max(1, div(length(runs) + 9, 10))

    labels =
      for {r, i} <- Enum.with_index(runs), rem(i, every) == 0 or i == length(runs) - 1 do
        [
          "<text class=\"axis run-label\" x=\"",
          int(x.(index[r.id])),
          "\" y=\"",
          int(h - 10),
          "\">",
          esc(r.id),
          "</text>"
        ]
      end

    legend =
      for {{service, _}, n} <- Enum.with_index(series),
          do: ["<span class=\"legend series-", int(rem(n, 6)), "\">", esc(service), "</span>"]

    [
      "<svg class=\"chart\" id=\"runs-chart\" viewBox=\"0 0 ",
      int(w),
      " ",
      int(h),
      "\" role=\"img\" aria-label=\"coverage per run\">",
      grid,
      lines,
      labels,
      "</svg><div class=\"legend-row\">",
      legend,
      "</div>"
    ]
  end

  @doc "A numeric table cell with `data-<key>` and `data-value` attributes."
  def num_td(key, n),
    do: [
      "<td class=\"num\" data-",
      key,
      "=\"",
      Integer.to_string(n),
      "\" data-value=\"",
      Integer.to_string(n),
      "\">",
      Integer.to_string(n),
      "</td>"
    ]

  defp int(n), do: Integer.to_string(n)
end
