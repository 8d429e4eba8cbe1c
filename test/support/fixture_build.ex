defmodule LiveCov.Test.FixtureBuild do
  @moduledoc false
  # Compiles Erlang fixture sources (with debug_info) into a fresh directory on the code path,
  # and the shared setups of the test files built on those fixtures.

  @agent_app "test/fixtures/agent_app"
  @snap_fx "test/fixtures/snapshot/snap_fx.erl"
  @snap_fx2 "test/fixtures/snapshot/snap_fx2.erl"
  @prune_fixtures Path.expand("../fixtures/prune", __DIR__)

  @doc """
  Compiles `sources` into a new directory added to the front of the code path; returns it.

  Options: `compile:` (default `[:debug_info]`), `prefix:` of the directory's name.
  """
  def erlang(sources, opts \\ []) do
    dir = unique_dir(Keyword.get(opts, :prefix, "live_cov_fx"))
    File.mkdir_p!(dir)

    for src <- List.wrap(sources) do
      extra = Keyword.get(opts, :compile, [:debug_info])

      {:ok, mod} =
        :compile.file(String.to_charlist(src), [
          {:outdir, String.to_charlist(dir)},
          :return_errors | extra
        ])

      :code.purge(mod)
      :code.delete(mod)
      :code.purge(mod)
    end

    :code.add_patha(String.to_charlist(dir))
    dir
  end

  @doc """
  Builds test/fixtures/agent_app (with debug_info) into a fresh ebin directory on the code
  path, next to its .app file (the application unloaded, so that it is read from there).
  `tag` names the directory. Undo with `remove_agent_app/1`.
  """
  def agent_app(tag) do
    dir = erlang(Path.wildcard(Path.join(@agent_app, "src/*.erl")), prefix: "live_cov_#{tag}")
    File.cp!(Path.join(@agent_app, "ebin/agent_app.app"), Path.join(dir, "agent_app.app"))
    _ = :application.unload(:agent_app)
    dir
  end

  @doc "Takes an `agent_app/1` build off the code path and deletes it."
  def remove_agent_app(dir) do
    :code.del_path(String.to_charlist(dir))
    _ = :application.unload(:agent_app)
    File.rm_rf(dir)
  end

  @doc """
  `setup_all {FixtureBuild, :snapshot_fixtures}` of the tests on the snapshot fixtures
  (`:snap_fx`, `:snap_fx2`): starts `:live_cov`, builds them (`fixtures:` the directory),
  stops coverage when the module's tests are done.
  """
  def snapshot_fixtures(_context), do: fixtures([@snap_fx, @snap_fx2])

  @doc """
  A fresh start for the snapshot tests: nothing instrumented or imported, then
  :snap_fx and :snap_fx2 instrumented (through the cover facade) and run once.
  """
  def snapshot_instrumented! do
    LiveCov.stop()
    LiveCov.Imported.clear()
    {:ok, :snap_fx} = LiveCov.Cover.compile_beam(:snap_fx)
    {:ok, :snap_fx2} = LiveCov.Cover.compile_beam(:snap_fx2)
    snapshot_work!()
    :ok
  end

  @doc "Runs some of the snapshot fixtures' code (after `snapshot_fixtures/0`)."
  def snapshot_work! do
    apply(:snap_fx, :classify, [3])
    apply(:snap_fx, :classify, [-1])
    apply(:snap_fx, :loop, [5])
    apply(:snap_fx2, :hello, [~c"x"])
  end

  @doc "As `snapshot_fixtures/1`, for the prune fixtures (test/fixtures/prune)."
  def prune_fixtures(_context), do: fixtures(Path.wildcard(Path.join(@prune_fixtures, "*.erl")))

  defp fixtures(sources) do
    {:ok, _} = Application.ensure_all_started(:live_cov)
    dir = erlang(sources)
    ExUnit.Callbacks.on_exit(fn -> LiveCov.stop() end)
    {:ok, fixtures: dir}
  end

  @doc "Prunes only when a test calls `LiveCov.prune/0`: no timer, one pass at a time."
  def manual_prune! do
    :ok =
      LiveCov.Prune.configure(
        interval: nil,
        retry: 1_000,
        keep_instrumented: false,
        max_per_pass: 50,
        concurrency: 1
      )
  end

  @doc """
  A new empty directory under the system's temporary directory, named after `tag`, deleted
  when the test (or, from `setup_all`, the test module) is done.
  """
  def tmp_dir(tag) do
    dir = unique_dir("live_cov_#{tag}")
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf(dir) end)
    dir
  end

  # Unique across the VMs of parallel test runs too (unique_integer is per VM).
  defp unique_dir(prefix) do
    Path.join(
      System.tmp_dir!(),
      "#{prefix}_#{System.unique_integer([:positive])}_#{:rand.uniform(1_000_000_000)}"
    )
  end
end
