defmodule LiveCov.AtomicFile do
  @moduledoc false
  # The one way LiveCov writes a file others may read meanwhile: a temporary file of its own
  # in the same directory (`PATH.OSPID.N.tmp`), then a rename, so readers see the old file
  # or the new one, never a part. Missing parent directories are created.

  @doc """
  Writes `data` to `path` atomically. `{:error, {step, path, posix}}` names what failed:
  `:mkdir` (the parent directory), `:write` (the temporary file) or `:rename`.
  """
  @spec write(Path.t(), iodata) :: :ok | {:error, {:mkdir | :write | :rename, Path.t(), atom}}
  def write(path, data) do
    path = to_string(path)
    tmp = "#{path}.#{System.pid()}.#{System.unique_integer([:positive])}.tmp"

    with {:mkdir, :ok} <- {:mkdir, File.mkdir_p(Path.dirname(path))},
         {:write, :ok} <- {:write, File.write(tmp, data)},
         {:rename, :ok} <- {:rename, File.rename(tmp, path)} do
      :ok
    else
      {step, {:error, posix}} ->
        _ = File.rm(tmp)
        {:error, {step, path, posix}}
    end
  end

  @doc "A one-line explanation of a `write/2` error, naming the file."
  @spec describe({:mkdir | :write | :rename, Path.t(), atom}) :: String.t()
  def describe({:mkdir, path, posix}),
    do: "cannot write #{path}: cannot create #{Path.dirname(path)}: #{:file.format_error(posix)}"

  def describe({_step, path, posix}), do: "cannot write #{path}: #{:file.format_error(posix)}"
end
