defmodule LiveCov.Gateway.DashboardParts do
  @moduledoc false
  # The pieces the dashboard's pages are made of (`LiveCov.Gateway.Dashboard`): tables of
  # services, sources, builds, runs and files, totals, the source view.

  import LiveCov.Gateway.Html

  @doc "A row of the services table."
  def service_row(name, summary, st) do
    sources = for s <- st.sources, s.service == name, do: s
    up = Enum.count(sources, &(&1.status == :up))
    builds = sources |> Enum.flat_map(&Map.keys(&1.builds)) |> Enum.uniq() |> length()
    s = summary || %{coverage: nil, sloc: 0, hits: 0, misses: 0, files: 0}

    [
      "<tr data-name=\"",
      esc(name),
      "\"><td>",
      link(path(["services", name]), name),
      "</td>",
      "<td class=\"num\" data-value=\"",
      pct(s.coverage),
      "\">",
      pct_span(["data-service=\"", esc(name), "\""], s.coverage),
      "</td>",
      "<td>",
      bar(s.coverage),
      "</td>",
      num_td("sloc", s.sloc),
      num_td("hits", s.hits),
      num_td("misses", s.misses),
      num_td("files", s.files),
      "<td class=\"",
      if(up == length(sources), do: "ok", else: "warn"),
      "\">",
      "#{up} / #{length(sources)}",
      "</td>",
      num_td("builds", builds),
      "</tr>"
    ]
  end

  @doc "The builds table of a service."
  def builds_table(service, builds, selected) do
    rows =
      for b <- builds do
        [
          "<tr",
          if(b.id == selected, do: " class=\"selected\"", else: ""),
          " data-name=\"",
          esc(b.id),
          "\">",
          "<td>",
          link(path(["services", service], build: b.id), b.id, " class=\"mono\""),
          "</td>",
          "<td class=\"mono\">",
          esc(b.git || "–"),
          "</td>",
          num_td("modules", b.modules),
          "<td>",
          esc(Enum.join(b.sources, ", ")),
          "</td>",
          "<td>",
          time(b.first_seen),
          "</td><td>",
          time(b.last_seen),
          "</td></tr>"
        ]
      end

    all =
      if selected, do: ["<p>", link(path(["services", service]), "all builds"), "</p>"], else: ""

    [
      table(
        "builds",
        [
          {"build", :text},
          {"git commit", :text},
          {"modules", :num},
          {"sources", :text},
          {"first seen", nil},
          {"last seen", nil}
        ],
        rows,
        "no data pulled yet"
      ),
      all
    ]
  end

  @doc "The sources table."
  def sources_table(sources) do
    rows =
      for s <- sources do
        [
          "<tr data-name=\"",
          esc(s.name),
          "\"><td>",
          esc(s.name),
          "</td><td>",
          esc(s.service),
          "</td><td>",
          esc(s.kind),
          "</td>",
          "<td><span class=\"badge status-",
          esc(s.status),
          "\">",
          esc(s.status),
          "</span></td>",
          "<td>",
          time(s.last_ok),
          "</td>",
          num_td("pulls", s.pulls),
          num_td("lives", s.lives),
          "<td class=\"error\">",
          esc(s.last_error),
          "</td></tr>"
        ]
      end

    table(
      "sources",
      [
        {"source", :text},
        {"service", :text},
        {"kind", :text},
        {"status", :text},
        {"last good pull", nil},
        {"pulls", :num},
        {"lives", :num},
        {"last error", nil}
      ],
      rows,
      "no sources"
    )
  end

  @doc "The runs table."
  def runs_table(runs) do
    rows =
      for r <- runs do
        [
          "<tr data-name=\"",
          esc(r.id),
          "\"><td>",
          link(path(["runs", r.id]), r.id, " class=\"mono\""),
          "</td>",
          "<td>",
          esc(r.name),
          "</td><td><span class=\"badge run-",
          esc(r.status),
          "\">",
          esc(r.status),
          "</span></td>",
          "<td>",
          time(r.started_at),
          "</td><td>",
          time(r.finished_at),
          "</td><td>",
          for {service, s} <- Enum.sort(r.results) do
            [
              "<span class=\"run-result\">",
              esc(service),
              " ",
              pct_span(
                ["data-run=\"", esc(r.id), "\" data-service=\"", esc(service), "\""],
                s.coverage
              ),
              "</span> "
            ]
          end,
          "</td></tr>"
        ]
      end

    table(
      "runs",
      [
        {"run", :text},
        {"name", :text},
        {"status", :text},
        {"started", nil},
        {"finished", nil},
        {"coverage", nil}
      ],
      rows,
      "no runs yet"
    )
  end

  @doc "Finished runs' coverage per service, in time order: `[{service, [{run, coverage}]}]`."
  def series(st) do
    finished =
      st.runs |> Enum.filter(&(&1.status == "finished")) |> Enum.sort_by(&{&1.finished_at, &1.id})

    for service <- st.services,
        pts = for(r <- finished, s = r.results[service], s != nil, do: {r, s.coverage}),
        pts != [],
        do: {service, pts}
  end

  @doc "A run's start, end, options and warnings."
  def run_meta(run) do
    [
      "<dl class=\"meta-list\"><dt>started</dt><dd>",
      time(run.started_at),
      "</dd><dt>finished</dt><dd>",
      time(run.finished_at),
      "</dd>",
      "<dt>reset at start</dt><dd>",
      to_string(run.reset),
      "</dd><dt>sources</dt><dd>",
      esc(Enum.join(run.sources, ", ")),
      "</dd>",
      for({k, v} <- Enum.sort(run.labels), do: ["<dt>", esc(k), "</dt><dd>", esc(v), "</dd>"]),
      "</dl>",
      for(w <- run.warnings, do: ["<p class=\"warn\">", esc(w), "</p>"])
    ]
  end

  @doc "What publishing a run did."
  def publish_list([]), do: ""

  def publish_list(results) do
    items =
      for p <- results do
        detail = if is_list(p.detail), do: Enum.join(p.detail, ", "), else: p.detail

        [
          "<li class=\"",
          if(p.ok, do: "ok", else: "error"),
          "\">",
          esc(p.service),
          " → ",
          esc(p.publisher),
          ": ",
          esc(detail),
          "</li>"
        ]
      end

    ["<h2>Published</h2><ul class=\"publish\">", items, "</ul>"]
  end
end
