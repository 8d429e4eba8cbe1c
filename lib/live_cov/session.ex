defmodule LiveCov.Session do
  @moduledoc false
  # Coverage on this node: start (resolve the targets, instrument them, cover the nodes asked
  # for, configure adaptive mode), stop and reset. `LiveCov` and the Mix tool call it.

  alias LiveCov.{Instrumented, Pipeline}

  @doc "See `LiveCov.start/2` (not as a Mix tool)."
  def start(target, opts) do
    {:ok, _} = Application.ensure_all_started(:live_cov)

    # Options are checked once, for the whole call, before any target is looked at.
    with :ok <- Pipeline.check_options(opts),
         {:ok, mode, prune_opts} <- mode_opts(opts),
         {:ok, backend} <- LiveCov.Counter.resolve(opts[:backend], mode),
         {:ok, targets, skipped, apps} <- resolve(List.wrap(target), {[], [], []}) do
      nodes = start_nodes(opts)

      {ok, failed} =
        targets
        |> Pipeline.instrument(
          [mode: mode, backend: backend] ++ Keyword.take(opts, [:optimize, :cache, :cache_dir])
        )
        |> Enum.reduce({[], []}, fn
          {:ok, m}, {ok, failed} -> {[m | ok], failed}
          {:error, t, {kind, msg}}, {ok, failed} -> {ok, [skip(t, kind, msg) | failed]}
        end)

      if mode == :coverage, do: :ok = LiveCov.Prune.configure(prune_opts)

      %{
        instrumented: Enum.reverse(ok),
        skipped: skipped ++ Enum.reverse(failed),
        applications: apps,
        backend: backend
      }
      |> put_nodes(nodes)
    end
  end

  defp mode_opts(opts) do
    case Keyword.get(opts, :mode, :counts) do
      mode when mode in [:counts, :coverage] ->
        with {:ok, prune} <- LiveCov.Prune.validate(Keyword.get(opts, :prune, [])),
             do: {:ok, mode, prune}

      other ->
        {:error,
         {:invalid_option,
          "mode: #{inspect(other)} is not a coverage mode; use mode: :counts (exact counts) " <>
            "or mode: :coverage (adaptive, bumps removed once hit)"}}
    end
  end

  # Expands applications and directories into modules and beam files.
  defp resolve([], {targets, skipped, apps}),
    do: {:ok, Enum.uniq(Enum.reverse(targets)), Enum.reverse(skipped), Enum.reverse(apps)}

  defp resolve([t | rest], {targets, skipped, apps})
       when is_atom(t) and t not in [nil, true, false] do
    case app_modules(t) do
      {:ok, mods} -> resolve(rest, {Enum.reverse(mods, targets), skipped, [t | apps]})
      :not_an_app -> resolve(rest, {[t | targets], skipped, apps})
    end
  end

  defp resolve([t | rest], acc) when is_list(t) and t != [] do
    if List.ascii_printable?(t),
      do: resolve([List.to_string(t) | rest], acc),
      else: resolve(t ++ rest, acc)
  end

  defp resolve([t | rest], {targets, skipped, apps}) when is_binary(t) do
    cond do
      File.dir?(t) ->
        beams = t |> Path.join("*.beam") |> Path.wildcard() |> Enum.sort()
        resolve(rest, {Enum.reverse(beams, targets), skipped, apps})

      File.regular?(t) ->
        resolve(rest, {[t | targets], skipped, apps})

      true ->
        msg = "#{t} is neither a directory of .beam files nor a .beam file: check the path"
        resolve(rest, {targets, [skip(t, :no_beam, msg) | skipped], apps})
    end
  end

  defp resolve([t | _], _acc) do
    {:error,
     {:bad_target,
      "cannot instrument #{inspect(t)}: give an application name, a module, a beam file, " <>
        "a directory of beams, or a list of them"}}
  end

  defp app_modules(app) do
    case :application.load(app) do
      :ok ->
        {:ok, Application.spec(app, :modules) || []}

      {:error, {:already_loaded, ^app}} ->
        {:ok, Application.spec(app, :modules) || []}

      {:error, _} ->
        :not_an_app
    end
  end

  defp skip(target, kind, message), do: %{target: target, kind: kind, message: message}

  defp start_nodes(opts) do
    if nodes = opts[:nodes], do: LiveCov.Nodes.start_nodes(nodes)
  end

  defp put_nodes(summary, nil), do: summary

  defp put_nodes(summary, {_started, failed}) do
    errors = for {n, {kind, message}} <- failed, do: %{node: n, kind: kind, message: message}
    Map.merge(summary, %{nodes: LiveCov.Nodes.which_nodes(), node_errors: errors})
  end

  @doc "See `LiveCov.status/0`."
  def status do
    %{
      backend: Instrumented.backend(),
      default_backend: elem(LiveCov.Counter.resolve(), 1),
      runtime: %{
        otp_release: LiveCov.Runtime.otp_release(),
        elixir: System.version(),
        native_coverage: LiveCov.Runtime.native_coverage?()
      },
      modules: length(Instrumented.modules()),
      harvest: LiveCov.Counter.Harvester.report()
    }
  end

  @doc "See `LiveCov.stop/0`."
  def stop do
    _ = LiveCov.Nodes.stop_nodes(:all)
    Pipeline.restore(:all)
  end

  @doc "See `LiveCov.stop/1`: the instrumented modules of `target` only."
  def stop(target) do
    target
    |> List.wrap()
    |> Enum.flat_map(&modules_of/1)
    |> Enum.uniq()
    |> Enum.filter(&Instrumented.lookup/1)
    |> Pipeline.restore()
  end

  # An application's modules (from its .app file), else the atom as a module.
  defp modules_of(name) when is_atom(name) do
    case app_modules(name) do
      {:ok, mods} -> mods
      :not_an_app -> [name]
    end
  end

  defp modules_of(_other), do: []

  @doc "See `LiveCov.reset/0`."
  def reset, do: with(:ok <- LiveCov.Prune.reset(), do: LiveCov.Nodes.reset(:all))
end
