# keyless broker aws-setup --output terraform: what AWS account 222222222222 needs so that keyless
# brokers the keyless role arn:aws:iam::111111111111:role/ci-deploy
# to the AWS role arn:aws:iam::222222222222:role/ci-deploy.
# AWS trusts keyless's issuer https://keyless.example.com/oidc for exactly the subject
# keyless:111111111111:role/ci-deploy (audience sts.amazonaws.com).
#
# One IAM OIDC provider per AWS account serves every keyless role: keep a single
# aws_iam_openid_connect_provider for this issuer. If the account has it already:
#   terraform import aws_iam_openid_connect_provider.keyless arn:aws:iam::222222222222:oidc-provider/keyless.example.com/oidc

resource "aws_iam_openid_connect_provider" "keyless" {
  url             = "https://keyless.example.com/oidc"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["0123456789abcdef0123456789abcdef01234567"]
}

# The AWS role keyless brokers to. Its trust policy admits only ID tokens of
# keyless's issuer for the keyless role's subject; attach what the role may
# do in AWS (aws_iam_role_policy_attachment, aws_iam_role_policy).
resource "aws_iam_role" "ci_deploy" {
  name                 = "ci-deploy"
  path                 = "/"
  description          = "Brokered by keyless for arn:aws:iam::111111111111:role/ci-deploy (subject keyless:111111111111:role/ci-deploy)"
  max_session_duration = 3600

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "KeylessBroker"
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.keyless.arn }
      Action    = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"]
      Condition = {
        StringEquals = {
          "keyless.example.com/oidc:aud" = "sts.amazonaws.com"
          "keyless.example.com/oidc:sub" = "keyless:111111111111:role/ci-deploy"
        }
      }
    }]
  })
}

output "keyless_oidc_provider_arn" {
  value = aws_iam_openid_connect_provider.keyless.arn
}

output "ci_deploy_role_arn" {
  value = aws_iam_role.ci_deploy.arn
}
