defmodule LiveCov.Agent.Metrics do
  @moduledoc false
  # Coverage as Prometheus metrics (text exposition format 0.0.4), served by the agent at
  # `GET /metrics` so an existing Prometheus can scrape coverage trends without the gateway.
  #
  # Coverage here is site coverage: a *bump site* is one instrumented point (a
  # `{function, arity, clause, line}`, as cover counts them); a site is *hit* once it ran.
  #
  #     live_cov_module_sites{application="my_app",module="Elixir.MyApp.Calc"} 42
  #     live_cov_module_sites_hit{application="my_app",module="Elixir.MyApp.Calc"} 30
  #     live_cov_module_coverage_percent{application="my_app",module="Elixir.MyApp.Calc"} 71.429
  #     live_cov_application_sites{application="my_app"} 420
  #     live_cov_application_sites_hit{application="my_app"} 301
  #     live_cov_application_coverage_percent{application="my_app"} 71.667
  #     live_cov_sites 420
  #     live_cov_sites_hit 301
  #     live_cov_coverage_percent 71.667
  #     live_cov_modules 10
  #     live_cov_info{node="app@host",version="0.1.0"} 1
  #
  # Modules of no loaded application have `application=""`. A percentage with no sites is
  # `100` (nothing to miss, as in `LiveCov.Stats`). Counts are those reports see
  # (`LiveCov.Counts`: this node, covered nodes and imported data).

  @type row :: %{
          application: String.t(),
          module: String.t(),
          sites: non_neg_integer,
          hit: non_neg_integer
        }

  @doc "The exposition text for the modules instrumented now."
  @spec render() :: binary
  def render, do: render(rows(), info_labels())

  @doc "One row per instrumented module: application, module, sites, sites hit."
  @spec rows() :: [row]
  def rows do
    infos = LiveCov.instrumented(counts: true)
    owners = LiveCov.Agent.Status.owners(Enum.map(infos, & &1.module))

    for info <- infos do
      %{
        application: owners |> Map.get(info.module, "") |> to_string(),
        module: Atom.to_string(info.module),
        sites: info.sites,
        hit: info.hit
      }
    end
  end

  @doc "Renders rows (pure). `info` are the labels of `live_cov_info`."
  @spec render([row], [{String.t(), String.t()}]) :: binary
  def render(rows, info \\ []) do
    rows = Enum.sort_by(rows, &{&1.application, &1.module})

    apps =
      rows
      |> Enum.reject(&(&1.application == ""))
      |> Enum.group_by(& &1.application)
      |> Enum.map(fn {app, rs} -> {app, sum(rs, :sites), sum(rs, :hit)} end)
      |> Enum.sort()

    total_sites = sum(rows, :sites)
    total_hit = sum(rows, :hit)
    mod_labels = fn r -> [{"application", r.application}, {"module", r.module}] end

    [
      family("live_cov_module_sites", "Bump sites (instrumented points) of a module.", fn ->
        for r <- rows, do: sample("live_cov_module_sites", mod_labels.(r), r.sites)
      end),
      family("live_cov_module_sites_hit", "Bump sites of a module that ran at least once.", fn ->
        for r <- rows, do: sample("live_cov_module_sites_hit", mod_labels.(r), r.hit)
      end),
      family(
        "live_cov_module_coverage_percent",
        "Percent of a module's bump sites that ran.",
        fn ->
          for r <- rows,
              do: sample("live_cov_module_coverage_percent", mod_labels.(r), pct(r.hit, r.sites))
        end
      ),
      family("live_cov_application_sites", "Bump sites of an application's modules.", fn ->
        for {a, s, _} <- apps, do: sample("live_cov_application_sites", [{"application", a}], s)
      end),
      family(
        "live_cov_application_sites_hit",
        "Bump sites of an application's modules that ran at least once.",
        fn ->
          for {a, _, h} <- apps,
              do: sample("live_cov_application_sites_hit", [{"application", a}], h)
        end
      ),
      family(
        "live_cov_application_coverage_percent",
        "Percent of an application's bump sites that ran.",
        fn ->
          for {a, s, h} <- apps,
              do: sample("live_cov_application_coverage_percent", [{"application", a}], pct(h, s))
        end
      ),
      family("live_cov_sites", "Bump sites of every instrumented module.", fn ->
        [sample("live_cov_sites", [], total_sites)]
      end),
      family("live_cov_sites_hit", "Bump sites that ran at least once, all modules.", fn ->
        [sample("live_cov_sites_hit", [], total_hit)]
      end),
      family("live_cov_coverage_percent", "Percent of all bump sites that ran.", fn ->
        [sample("live_cov_coverage_percent", [], pct(total_hit, total_sites))]
      end),
      family("live_cov_modules", "Instrumented modules.", fn ->
        [sample("live_cov_modules", [], length(rows))]
      end),
      family("live_cov_info", "LiveCov agent information (always 1).", fn ->
        [sample("live_cov_info", info, 1)]
      end)
    ]
    |> IO.iodata_to_binary()
  end

  @doc "The content type of the exposition format."
  def content_type, do: "text/plain; version=0.0.4; charset=utf-8"

  @doc false
  # Label value escaping of the text format: backslash, double quote, line feed.
  def escape(value) do
    value
    |> to_string()
    |> String.replace("\\", "\\\\")
    |> String.replace("\"", "\\\"")
    |> String.replace("\n", "\\n")
  end

  defp info_labels,
    do: [{"node", Atom.to_string(node())}, {"version", LiveCov.Agent.Status.version()}]

  defp family(name, help, samples) do
    ["# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", samples.()]
  end

  defp sample(name, [], value), do: [name, " ", num(value), "\n"]

  defp sample(name, labels, value) do
    ls = Enum.map_intersperse(labels, ",", fn {k, v} -> [k, "=\"", escape(v), "\""] end)
    [name, "{", ls, "} ", num(value), "\n"]
  end

  defp pct(_hit, 0), do: 100
  defp pct(hit, sites), do: Float.round(hit * 100 / sites, 3)

  defp num(n) when is_integer(n), do: Integer.to_string(n)
  defp num(f) when is_float(f), do: :erlang.float_to_binary(f, [:short])

  defp sum(rows, key), do: Enum.reduce(rows, 0, &(Map.fetch!(&1, key) + &2))
end
