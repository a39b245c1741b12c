namespace Compiled.Nets.Samples.BertSpam;

/// <summary>Placeholder until the checkpoint loader lands.</summary>
public static class PretrainedBert
{
    public static void Load(string directory, ParameterStore store) => throw new NotSupportedException("Loading Hugging Face checkpoints is not wired up yet.");
}
