defmodule LiveCov.Gateway.Dashboard do
  @moduledoc false
  # The Cover Center: server-rendered HTML pages of the gateway (with `priv/gateway/gateway.css`
  # and `gateway.js`). Every number comes from `LiveCov.Gateway.View`, as the JSON API's, and
  # carries a `data-*` attribute naming it.
  #
  #   * `/` - services (totals, sources up, builds), the coverage of finished runs over time,
  #     the runs and the sources;
  #   * `/services/:name` - a service's builds, sources and files (`?build=` one build);
  #   * `/services/:name/source?file=` - a file with its per-line hit counts;
  #   * `/runs/:id` (and `/runs/:id/source`) - what a run measured, and what was published.

  import LiveCov.Gateway.Html

  alias LiveCov.Gateway.{DashboardFiles, DashboardParts, View}

  @doc "`GET /`."
  def index do
    with {:ok, st} <- View.fetch_state() do
      services =
        for name <- st.services do
          summary =
            case View.service_stats(name) do
              {:ok, stats} -> View.summary(stats)
              {:error, _} -> nil
            end

          DashboardParts.service_row(name, summary, st)
        end

      body = [
        "<h1>Services</h1>",
        table(
          "services",
          [
            {"service", :text},
            {"coverage", :num},
            {"", nil},
            {"relevant lines", :num},
            {"hit", :num},
            {"missed", :num},
            {"files", :num},
            {"sources up", nil},
            {"builds", :num}
          ],
          services
        ),
        "<h2>Coverage per test run</h2>",
        chart(DashboardParts.series(st)),
        "<h2>Test runs</h2>",
        DashboardParts.runs_table(st.runs),
        "<h2>Sources</h2>",
        DashboardParts.sources_table(st.sources)
      ]

      html(page(st.title, "Services", body))
    end
  end

  @doc "`GET /services/:name`."
  def service(name, query) do
    build = blank(query["build"])

    with {:ok, st} <- View.fetch_state(),
         {:ok, stats} <- View.service_stats(name, build) do
      s = View.summary(stats)
      sources = for src <- st.sources, src.service == name, do: src

      body = [
        "<nav class=\"crumbs\">",
        link("/", "services"),
        " / ",
        esc(name),
        if(build, do: [" / build ", esc(build)], else: ""),
        "</nav>",
        "<h1>",
        esc(name),
        if(build, do: [" <span class=\"meta\">build ", esc(build), "</span>"], else: ""),
        "</h1>",
        DashboardFiles.totals("service", name, s),
        "<h2>Builds</h2>",
        DashboardParts.builds_table(name, View.builds(name), build),
        "<h2>Files</h2>",
        filter("files"),
        DashboardFiles.files_table(stats.files, fn f ->
          path(["services", name, "source"], file: f.filename, build: build)
        end),
        "<h2>Sources</h2>",
        DashboardParts.sources_table(sources)
      ]

      html(page(st.title, name, body))
    end
  end

  @doc "`GET /services/:name/source?file=`."
  def source(name, query) do
    build = blank(query["build"])

    with {:ok, st} <- View.fetch_state(),
         {:ok, file} <- View.param(query, "file"),
         {:ok, stats} <- View.service_stats(name, build),
         {:ok, f} <- View.file(stats, file) do
      crumbs = [
        link("/", "services"),
        " / ",
        link(path(["services", name], build: build), name),
        " / ",
        esc(file)
      ]

      html(page(st.title, file, DashboardFiles.source_view(crumbs, f)))
    end
  end

  @doc "`GET /runs/:id`."
  def run(id) do
    with {:ok, st} <- View.fetch_state(),
         {:ok, run} <- View.run(id) do
      body = [
        "<nav class=\"crumbs\">",
        link("/", "services"),
        " / run ",
        esc(id),
        "</nav>",
        "<h1>Run ",
        esc(run.name),
        " <span class=\"meta\">",
        esc(id),
        " · ",
        esc(run.status),
        "</span></h1>",
        DashboardParts.run_meta(run),
        for service <- run.services do
          [
            "<section class=\"run-service\"><h2>",
            esc(service),
            "</h2>",
            run_service(run, service),
            "</section>"
          ]
        end,
        DashboardParts.publish_list(run.publish)
      ]

      html(page(st.title, "run #{id}", body))
    end
  end

  defp run_service(%{status: "finished"} = run, service) do
    case View.run_stats(run.id, service) do
      {:ok, stats} ->
        [
          DashboardFiles.totals("run-service", service, View.summary(stats)),
          filter("files-" <> service),
          DashboardFiles.files_table(
            stats.files,
            fn f -> path(["runs", run.id, "source"], service: service, file: f.filename) end,
            "files-" <> service
          )
        ]

      {:error, {_, msg}} ->
        ["<p class=\"error\">", esc(msg), "</p>"]
    end
  end

  defp run_service(_run, _service),
    do:
      "<p class=\"meta\">Running: finish the run (POST /runs/:id/finish) to see its results.</p>"

  @doc "`GET /runs/:id/source?service=&file=`."
  def run_source(id, query) do
    with {:ok, st} <- View.fetch_state(),
         {:ok, service} <- View.param(query, "service"),
         {:ok, file} <- View.param(query, "file"),
         {:ok, stats} <- View.run_stats(id, service),
         {:ok, f} <- View.file(stats, file) do
      crumbs = [
        link("/", "services"),
        " / ",
        link(path(["runs", id]), "run " <> id),
        " / ",
        esc(service),
        " / ",
        esc(file)
      ]

      html(page(st.title, file, DashboardFiles.source_view(crumbs, f)))
    end
  end

  @doc "An error page."
  def error_page(status, message) do
    title = (View.state() || %{title: "LiveCov Cover Center"}).title

    body = [
      "<h1>",
      Integer.to_string(status),
      "</h1><p class=\"error\">",
      esc(message),
      "</p><p>",
      link("/", "back to the services"),
      "</p>"
    ]

    {status, [{"content-type", "text/html; charset=utf-8"}], page(title, "error", body)}
  end

  defp html(body), do: {:ok, 200, "text/html; charset=utf-8", body}

  defp blank(""), do: nil
  defp blank(v), do: v
end
