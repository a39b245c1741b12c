using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

public class TokenNetworkTests
{
    [Fact]
    public void TokenNet_TrainStep_MatchesEager_AndRejectsBadIds()
    {
        using var concrete = new TokenNet(seed: 3);
        ITokenClassifier net = concrete;
        int batch = 4;
        var r = new Rng(1);
        var ids = Enumerable.Range(0, batch * 12).Select(_ => r.NextInt(50)).ToArray();
        var labels = new[] { 0, 2, 1, 2 };

        net.Parameters.ZeroGradients();
        Tensor loss, logits;
        using (Eager.Training())
        {
            logits = concrete.ForwardEager(Tensor.FromIds(ids, batch, 12));
            loss = logits.CrossEntropy(labels);
            loss.Backward();
        }
        var eager = net.Parameters.Parameters.Select(p => net.Parameters.Gradient(p).ToArray()).ToArray();
        var compiledLogits = new float[batch * 3];
        float compiled = net.TrainStep(ids, labels, batch, compiledLogits);
        Assert.Equal(loss.Data[0], compiled, 1e-5f);
        for (int i = 0; i < compiledLogits.Length; i++) Assert.Equal(logits.Data[i], compiledLogits[i], 1e-4f);
        for (int p = 0; p < eager.Length; p++)
        {
            var g = net.Parameters.Gradient(net.Parameters.Parameters[p]).ToArray();
            for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(eager[p][i] - g[i]) < 1e-4f, $"{net.Parameters.Parameters[p].Name}[{i}]");
        }
        Assert.Contains(net.Parameters.Gradient(net.Parameters["embed.weight"]).ToArray(), v => v != 0);

        ids[5] = 50;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(ids, batch, compiledLogits));
        Assert.Contains("Token id 50 at position 5", ex.Message);
    }
}
