defmodule LiveCov.Format do
  @moduledoc """
  Behaviour of a coverage report format: a pure function from
  `%LiveCov.Stats{}` to iodata.

  Built-in formats:

  | name | module | default file |
  |---|---|---|
  | `:terminal` | `LiveCov.Format.Terminal` | `coverage.txt` |
  | `:annotated` | `LiveCov.Format.Annotated` | `coverage.COVER.out` (or one file per source) |
  | `:html` | `LiveCov.Format.HTML` | `coverage.html` |
  | `:lcov` | `LiveCov.Format.LCOV` | `lcov.info` |
  | `:cobertura` | `LiveCov.Format.Cobertura` | `cobertura.xml` |
  | `:coveralls` | `LiveCov.Format.Coveralls` | `coveralls.json` |
  | `:json` | `LiveCov.Format.JSON` | `coverage.json` |

  A custom format is any module implementing this behaviour; pass the module
  wherever a format name is accepted (`LiveCov.Formats.fetch/1` resolves names and modules).
  """

  @doc "Renders the whole report."
  @callback render(stats :: LiveCov.Stats.t(), opts :: keyword()) :: iodata()

  @doc "Short name, e.g. `:lcov`."
  @callback name() :: atom()

  @doc "File extension without the dot, e.g. `\"info\"`."
  @callback extension() :: String.t()

  @doc "Default output file name used by `LiveCov.Report.Writer`."
  @callback filename() :: String.t()

  @doc """
  Optional: render to several files, `[{relative_path, iodata}]`. When a format
  exports it and the writer is asked for `split: true`, the writer uses it.
  """
  @callback render_files(stats :: LiveCov.Stats.t(), opts :: keyword()) :: [{Path.t(), iodata()}]

  @optional_callbacks render_files: 2
end
