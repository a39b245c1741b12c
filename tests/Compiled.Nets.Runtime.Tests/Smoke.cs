public class Smoke { [Fact] public void T() {} }
