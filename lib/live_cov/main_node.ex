defmodule LiveCov.MainNode do
  @moduledoc false
  # Which node runs coverage: this one, unless another node covers it (`LiveCov.Nodes`);
  # and the guard that makes the facades' functions answer only on the main node.

  alias LiveCov.Nodes.Remote

  @type node_error :: {:not_main_node, String.t()}

  @doc "The main node: this node, unless it is covered by another node."
  @spec main_node() :: node
  def main_node, do: Remote.main_node() || node()

  @doc "`:ok` on the main node, `{:error, :not_main_node}` on a covered node."
  @spec check_main() :: :ok | {:error, :not_main_node}
  def check_main do
    case Remote.main_node() do
      nil -> :ok
      main when main == node() -> :ok
      _ -> {:error, :not_main_node}
    end
  end

  @doc """
  Makes the listed `{name, arity}` functions of the calling module (those it defines before
  this call) answer only on the main node: on a covered node they return, instead of running,
  `check_main/0`'s `{:error, :not_main_node}` (`error: :reason`) or `not_main_node/0`'s
  message (`error: :message`).
  """
  defmacro main_node_only(functions, error) when error in [:reason, :message] do
    quote bind_quoted: [functions: functions, error: error] do
      for {name, arity} <- functions, Module.defines?(__MODULE__, {name, arity}, :def) do
        args = Macro.generate_arguments(arity, __MODULE__)
        defoverridable [{name, arity}]

        def unquote(name)(unquote_splicing(args)) do
          case LiveCov.MainNode.check_main() do
            :ok -> super(unquote_splicing(args))
            not_main -> LiveCov.MainNode.covered_error(unquote(error), not_main)
          end
        end
      end
    end
  end

  @doc false
  def covered_error(:reason, error), do: error
  def covered_error(:message, _error), do: not_main_node()

  @doc "The error `LiveCov`'s own functions return on a covered node."
  @spec not_main_node() :: {:error, node_error}
  def not_main_node do
    {:error,
     {:not_main_node,
      "node #{node()} is covered by main node #{main_node()}: call LiveCov there " <>
        "(or run LiveCov.Cover.stop([#{inspect(node())}]) there to release this node)"}}
  end
end
