defmodule LiveCov.MainNodeTest do
  use ExUnit.Case, async: true

  alias LiveCov.MainNode

  test "a node nobody covers is its own main node" do
    assert MainNode.main_node() == node()
    assert MainNode.check_main() == :ok
  end

  test "the guarded facade functions say where to call on a covered node" do
    assert {:error, {:not_main_node, msg}} = MainNode.not_main_node()
    assert msg =~ "covered by main node"
    assert MainNode.covered_error(:reason, {:error, :not_main_node}) == {:error, :not_main_node}
  end
end
