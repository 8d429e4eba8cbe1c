defmodule LiveCov.Agent.Status do
  @moduledoc false
  # What `GET /status` answers: the node, what is instrumented, and the build identity.
  #
  #     %{
  #       node: "app@host", mode: "counts",            # "counts" | "coverage" | "mixed" | "idle"
  #       backend: "native",                           # "native" | "nif" | "mixed" | "none"
  #       harvest: %{harvests: 40, last_ms: 0.2, reset_elsewhere: %{}, lost: %{}},
  #       applications: [%{name: "my_app", version: "1.2.0", modules: ["Elixir.MyApp.Calc"],
  #                        modules_total: 12}],
  #       modules: [%{module: "Elixir.MyApp.Calc", application: "my_app", md5: "9f0c...",
  #                   sites: 42, mode: "counts", backend: "native", source: "/build/lib/my_app/calc.ex",
  #                   instrumented_at: 1_700_000_000_000}],
  #       git_commit: "3f2a9c1" | nil, git_commit_source: "config" | "/srv/app/VERSION" | nil,
  #       agent_version: "0.1.0", otp_release: "25", elixir_version: "1.14.0",
  #       loaded_applications: %{"my_app" => "1.2.0", ...}
  #     }
  #
  # Module names are atoms as strings (`"Elixir.MyApp.Calc"`, `"my_mod"`), exactly as in
  # snapshots. The git commit comes from `config :live_cov, :git_commit`, else from the first
  # line of a VERSION file: `config :live_cov, :version_file`, else `VERSION` in the release
  # root (`:code.root_dir/0`), else in the current directory.

  @doc "The status map (see the module doc)."
  @spec build() :: map
  def build do
    infos = LiveCov.instrumented()
    status = LiveCov.status()
    owners = owners(Enum.map(infos, & &1.module))
    {commit, source} = git_commit()

    %{
      node: Atom.to_string(node()),
      mode: mode(infos),
      backend: Atom.to_string(status.backend),
      harvest: harvest(status.harvest),
      applications: applications(infos, owners),
      modules:
        Enum.map(infos, fn info ->
          %{
            module: Atom.to_string(info.module),
            application: owners |> Map.get(info.module) |> app_name(),
            md5: hex(info.md5),
            sites: info.sites,
            mode: Atom.to_string(info.mode),
            backend: Atom.to_string(info.backend),
            source: info.source && to_string(info.source),
            instrumented_at: info.instrumented_at
          }
        end),
      git_commit: commit,
      git_commit_source: source,
      agent_version: version(),
      otp_release: List.to_string(:erlang.system_info(:otp_release)),
      elixir_version: System.version(),
      loaded_applications:
        Map.new(Application.loaded_applications(), fn {app, _, vsn} ->
          {Atom.to_string(app), List.to_string(vsn)}
        end)
    }
  end

  defp harvest(report) do
    %{
      harvests: report.harvests,
      last_ms: report.last_ms,
      reset_elsewhere: Map.new(report.reset_elsewhere, fn {m, n} -> {Atom.to_string(m), n} end),
      lost: Map.new(report.lost, fn {m, why} -> {Atom.to_string(m), why} end)
    }
  end

  @doc "LiveCov's version."
  @spec version() :: String.t()
  defdelegate version, to: LiveCov.Runtime, as: :live_cov_version

  @doc "`%{module => application}` for the given modules that belong to a loaded application."
  @spec owners([module]) :: %{module => atom}
  def owners(modules) do
    wanted = MapSet.new(modules)

    for {app, _, _} <- Application.loaded_applications(),
        mod <- Application.spec(app, :modules) || [],
        MapSet.member?(wanted, mod),
        into: %{},
        do: {mod, app}
  end

  @doc "The git commit and where it came from (`{nil, nil}` when none is known)."
  @spec git_commit() :: {String.t() | nil, String.t() | nil}
  def git_commit do
    case Application.get_env(:live_cov, :git_commit) do
      c when is_binary(c) and c != "" ->
        {c, "config"}

      _ ->
        Enum.find_value(version_files(), {nil, nil}, fn path ->
          case File.read(path) do
            {:ok, text} ->
              case text |> String.split("\n", parts: 2) |> hd() |> String.trim() do
                "" -> nil
                line -> {String.slice(line, 0, 200), path}
              end

            {:error, _} ->
              nil
          end
        end)
    end
  end

  defp version_files do
    configured =
      case Application.get_env(:live_cov, :version_file) do
        p when is_binary(p) -> [p]
        _ -> []
      end

    cwd =
      case File.cwd() do
        {:ok, dir} -> [Path.join(dir, "VERSION")]
        _ -> []
      end

    Enum.uniq(configured ++ [Path.join(List.to_string(:code.root_dir()), "VERSION")] ++ cwd)
  end

  defp applications(infos, owners) do
    infos
    |> Enum.filter(&Map.has_key?(owners, &1.module))
    |> Enum.group_by(&Map.fetch!(owners, &1.module), & &1.module)
    |> Enum.map(fn {app, mods} ->
      %{
        name: Atom.to_string(app),
        version: vsn(app),
        modules: mods |> Enum.map(&Atom.to_string/1) |> Enum.sort(),
        modules_total: length(Application.spec(app, :modules) || [])
      }
    end)
    |> Enum.sort_by(& &1.name)
  end

  defp mode([]), do: "idle"

  defp mode(infos) do
    case infos |> Enum.map(& &1.mode) |> Enum.uniq() do
      [one] -> Atom.to_string(one)
      _ -> "mixed"
    end
  end

  defp vsn(app) do
    case Application.spec(app, :vsn) do
      nil -> nil
      v -> List.to_string(v)
    end
  end

  defp app_name(nil), do: nil
  defp app_name(app), do: Atom.to_string(app)

  defp hex(bin) when is_binary(bin), do: Base.encode16(bin, case: :lower)
  defp hex(_), do: nil
end
