namespace Compiled.Nets.Runtime.Tests.Memory;

public class NetworkWorkspaceTests
{
    [Fact]
    public void Workspace_SizesEachArenaByCapacity_AndInferenceHasNoGradients()
    {
        var layout = new WorkspaceLayout("Net", activations: 100, gradients: 60, ints: 7, stats: 5, scratch: 33);
        using var training = new NetworkWorkspace(layout, 4, forTraining: true);
        Assert.Equal((400, 240, 28, 5, 33), (training.Act.Length, training.Grad.Length, training.Ints.Length, training.Stats.Length, training.Scratch.Length));
        Assert.True(training.ForTraining);
        Assert.Equal(4, training.Capacity);
        using var inference = new NetworkWorkspace(layout, 4, forTraining: false);
        Assert.Equal(0, inference.Grad.Length);
        Assert.False(inference.ForTraining);
    }

    [Fact]
    public void Workspace_WithEmptyParts_StillHoldsOneElement()
    {
        using var ws = new NetworkWorkspace(new WorkspaceLayout("Net", 10, 10, 0, 0, 0), 2, false);
        Assert.Equal((1, 1, 2), (ws.Stats.Length, ws.Scratch.Length, ws.Ints.Length));
    }

    [Fact]
    public void MaxBatch_IsTheLargestBatchWhoseArenasFit()
    {
        var layout = new WorkspaceLayout("Net", activations: 1_000_000, gradients: 3_000_000, ints: 0, stats: 0, scratch: 0);
        Assert.Equal(int.MaxValue / 3_000_000, layout.MaxBatch);
        Assert.True((long)layout.MaxBatch * 3_000_000 <= int.MaxValue && (long)(layout.MaxBatch + 1) * 3_000_000 > int.MaxValue);
        Assert.Equal(int.MaxValue, new WorkspaceLayout("Net", 0, 0, 0, 0, 0).MaxBatch);
    }

    [Fact]
    public void Workspace_TooLargeForOneArena_NamesTheNetworkTheMiBAndTheLargestBatch()
    {
        var layout = new WorkspaceLayout("BigNet", activations: 1 << 24, gradients: 1 << 20, ints: 0, stats: 0, scratch: 0);
        var e = Assert.Throws<InvalidOperationException>(() => new NetworkWorkspace(layout, 1000, false));
        Assert.Contains("BigNet: a batch of 1000 samples needs 64000 MiB of activations", e.Message);
        Assert.Contains($"use batches of at most {layout.MaxBatch} samples", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new NetworkWorkspace(layout, 0, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkspaceLayout("Net", -1, 0, 0, 0, 0));
    }

    [Fact]
    public void Check_NamesNetworkMethodAndShapes()
    {
        NetworkArguments.Check("ConvNet", "Forward", 2 * 784, 2, 784, "1, 28, 28", 20, 10, "10");
        NetworkArguments.Check("ConvNet", "Forward", 784, 1, 784, "1, 28, 28", -1, 10, "10"); // no output span to check
        var batch = Assert.Throws<ArgumentOutOfRangeException>(() => NetworkArguments.Check("ConvNet", "Forward", 0, 0, 784, "1, 28, 28", -1, 10, "10"));
        Assert.Equal("batch", batch.ParamName);
        Assert.StartsWith("ConvNet.Forward: batch must be positive.", batch.Message);
        var input = Assert.Throws<ArgumentException>(() => NetworkArguments.Check("ConvNet", "TrainStep", 100, 2, 784, "1, 28, 28", -1, 10, "10"));
        Assert.Equal("input", input.ParamName);
        Assert.StartsWith("ConvNet.TrainStep: input has 100 floats, but batch 2 × [1, 28, 28] needs 1568.", input.Message);
        var output = Assert.Throws<ArgumentException>(() => NetworkArguments.Check("ConvNet", "Forward", 1568, 2, 784, "1, 28, 28", 10, 10, "10"));
        Assert.Equal("output", output.ParamName);
        Assert.StartsWith("ConvNet.Forward: the output span has 10 floats, but batch 2 × [10] needs 20.", output.Message);
    }

    [Fact]
    public void CheckSequence_ChecksLengthInputMaskAndOutput()
    {
        int[] mask = [1, 1, 0, 1, 0, 0];
        NetworkArguments.CheckSequence("SeqNet", "Forward", 6 * 4, mask, 2, 3, 8, 4, ", 4", 2 * 5, 5, "5");
        NetworkArguments.CheckSequence("SeqNet", "Forward", 6, default, 2, 3, 8, 1, "", 6 * 7, 3 * 7, "T, 7");
        var length = Assert.Throws<ArgumentOutOfRangeException>(() => NetworkArguments.CheckSequence("SeqNet", "Forward", 18, default, 2, 9, 8, 1, "", -1, 5, "5"));
        Assert.Equal("sequence", length.ParamName);
        Assert.StartsWith("SeqNet.Forward: the sequence length must be in [1, 8] (MaxSequence).", length.Message);
        var input = Assert.Throws<ArgumentException>(() => NetworkArguments.CheckSequence("SeqNet", "Forward", 5, default, 2, 3, 8, 4, ", 4", -1, 5, "5"));
        Assert.StartsWith("SeqNet.Forward: input has 5 values, but batch 2 × [3, 4] needs 24.", input.Message);
        var shortMask = Assert.Throws<ArgumentException>(() => NetworkArguments.CheckSequence("SeqNet", "Forward", 6, new int[5], 2, 3, 8, 1, "", -1, 5, "5"));
        Assert.Equal("mask", shortMask.ParamName);
        var emptyRow = Assert.Throws<ArgumentException>(() => NetworkArguments.CheckSequence("SeqNet", "Forward", 6, new[] { 1, 0, 0, 0, 0, 0 }, 2, 3, 8, 1, "", -1, 5, "5"));
        Assert.Contains("row 1 of the attention mask has no 1", emptyRow.Message);
        var output = Assert.Throws<ArgumentException>(() => NetworkArguments.CheckSequence("SeqNet", "Forward", 6, default, 2, 3, 8, 1, "", 7, 3 * 7, "T, 7"));
        Assert.StartsWith("SeqNet.Forward: the output span has 7 floats, but batch 2 × [T, 7] needs 42.", output.Message);
    }
}
