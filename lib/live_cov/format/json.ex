defmodule LiveCov.Format.JSON do
  @moduledoc false
  # Plain JSON dump of `LiveCov.Stats` (keys sorted):
  #
  #     {"coverage": 70.0, "hits": 7, "misses": 3, "sloc": 10,
  #      "generated_at": "2024-01-01T00:00:00Z", "root": "/app",
  #      "missing_sources": [], "skipped_files": [], "ignored_modules": [],
  #      "files": [{"filename": "lib/report_app/calc.ex", "path": "/app/lib/report_app/calc.ex",
  #                 "coverage": 83.3, "sloc": 6, "hits": 5, "misses": 1,
  #                 "missing_source": false, "modules": ["ReportApp.Calc"],
  #                 "lines": [null, 5, 0, ...],
  #                 "functions": [{"module": "ReportApp.Calc", "name": "add/2", "line": 2, "count": 5}]}]}
  #
  # `lines[i]` is the count of line `i + 1` (`null` = not relevant).
  # `include_source: true` adds `"source": [line texts]` per file.

  @behaviour LiveCov.Format

  alias LiveCov.Stats.Ignore

  @impl true
  def name, do: :json
  @impl true
  def extension, do: "json"
  @impl true
  def filename, do: "coverage.json"

  @impl true
  def render(%LiveCov.Stats{} = s, opts \\ []) do
    source? = Keyword.get(opts, :include_source, false) == true

    files =
      Enum.map(s.files, fn f ->
        base = %{
          filename: f.filename,
          path: f.path,
          coverage: f.coverage,
          sloc: f.sloc,
          hits: f.hits,
          misses: f.misses,
          missing_source: f.missing_source?,
          modules: Enum.map(f.modules, &Ignore.module_name/1),
          lines: Enum.map(f.source, & &1.coverage),
          functions:
            Enum.map(f.functions, fn fun ->
              %{
                module: Ignore.module_name(fun.module),
                name: fun.name,
                line: fun.line,
                count: fun.count
              }
            end)
        }

        if source?, do: Map.put(base, :source, Enum.map(f.source, & &1.source)), else: base
      end)

    LiveCov.JSON.encode!(%{
      coverage: s.coverage,
      sloc: s.sloc,
      hits: s.hits,
      misses: s.misses,
      generated_at: LiveCov.Format.Text.timestamp(s),
      exact: s.exact,
      root: s.root,
      missing_sources: s.missing_sources,
      skipped_files: s.skipped_files,
      ignored_modules: Enum.map(s.ignored_modules, &Ignore.module_name/1),
      files: files
    })
  end
end
