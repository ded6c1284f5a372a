// The packaged CloudFormation template read as IAM sees it at run time: parameters at their
// defaults (or the values asked for), conditions decided, intrinsics resolved to concrete ARNs
// in one account and region. What cannot be known before deploy is written so that it still
// matches what the emulator records: a table's stream label is `*`, an identity pool is named
// by its IdentityPoolName.

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const PARTITION = 'aws';

const NO_VALUE = Symbol('AWS::NoValue');

export class Template {
  /** @param {object} json the template; @param {Record<string,string>} overrides parameter values */
  constructor(json, overrides = {}) {
    this.json = json;
    this.resources = json.Resources || {};
    this.parameters = {};
    for (const [name, parameter] of Object.entries(json.Parameters || {})) {
      this.parameters[name] = name in overrides ? overrides[name] : parameter.Default;
    }
    for (const name of Object.keys(overrides)) {
      if (!(name in this.parameters)) throw new Error(`the template has no parameter ${name}`);
    }
    this.conditions = {};
  }

  condition(name) {
    if (!(name in this.conditions)) {
      const definition = (this.json.Conditions || {})[name];
      if (definition === undefined) throw new Error(`the template has no condition ${name}`);
      this.conditions[name] = Boolean(this.resolve(definition));
    }
    return this.conditions[name];
  }

  /** Whether a resource exists with these parameters (its Condition holds). */
  exists(logicalId) {
    const resource = this.resources[logicalId];
    return resource !== undefined && (resource.Condition === undefined || this.condition(resource.Condition));
  }

  name(logicalId, property) {
    const value = this.resolve(this.resources[logicalId]?.Properties?.[property]);
    return typeof value === 'string' ? value : undefined;
  }

  /** What `Ref` of a resource gives, as far as a policy needs it. */
  ref(id) {
    if (id === 'AWS::Partition') return PARTITION;
    if (id === 'AWS::Region') return REGION;
    if (id === 'AWS::AccountId') return ACCOUNT;
    if (id === 'AWS::StackName') return 'stack';
    if (id === 'AWS::URLSuffix') return 'amazonaws.com';
    if (id === 'AWS::NoValue') return NO_VALUE;
    if (id in this.parameters) return this.parameters[id];
    const resource = this.resources[id];
    if (!resource) throw new Error(`Ref to ${id}, which the template does not have`);
    switch (resource.Type) {
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.name(id, 'QueueName') ?? id}`;
      case 'AWS::Cognito::IdentityPool':
        return this.name(id, 'IdentityPoolName') ?? id;
      case 'AWS::DynamoDB::Table':
        return this.name(id, 'TableName') ?? id;
      case 'AWS::Kinesis::Stream':
        return this.name(id, 'Name') ?? id;
      case 'AWS::Lambda::Function':
        return this.name(id, 'FunctionName') ?? id;
      default:
        return id;
    }
  }

  getAtt(id, attribute) {
    const resource = this.resources[id];
    if (!resource) throw new Error(`GetAtt of ${id}, which the template does not have`);
    const arn = (service, rest) => `arn:${PARTITION}:${service}:${REGION}:${ACCOUNT}:${rest}`;
    switch (`${resource.Type}.${attribute}`) {
      case 'AWS::DynamoDB::Table.Arn':
        return arn('dynamodb', `table/${this.ref(id)}`);
      case 'AWS::DynamoDB::Table.StreamArn':
        // the stream's label is chosen when the table is made
        return arn('dynamodb', `table/${this.ref(id)}/stream/*`);
      case 'AWS::Kinesis::Stream.Arn':
        return arn('kinesis', `stream/${this.ref(id)}`);
      case 'AWS::SQS::Queue.Arn':
        return arn('sqs', this.name(id, 'QueueName') ?? id);
      case 'AWS::SQS::Queue.QueueName':
        return this.name(id, 'QueueName') ?? id;
      case 'AWS::IAM::Role.Arn':
        return `arn:${PARTITION}:iam::${ACCOUNT}:role/${this.roleName(id)}`;
      case 'AWS::Lambda::Function.Arn':
        return arn('lambda', `function:${this.ref(id)}`);
      default:
        return `${id}.${attribute}`;
    }
  }

  /** A role's name: its RoleName, or (as CloudFormation would generate one) its logical id. */
  roleName(id) {
    return this.name(id, 'RoleName') ?? id;
  }

  sub(text, variables = {}) {
    return text.replace(/\$\{(!?)([^}]+)\}/g, (whole, literal, name) => {
      if (literal) return `\${${name}}`;
      if (name in variables) return String(this.resolve(variables[name]));
      const [id, attribute] = name.split('.');
      const value = attribute === undefined ? this.ref(id) : this.getAtt(id, attribute);
      return String(value);
    });
  }

  /** A template value with every intrinsic function resolved. */
  resolve(value) {
    if (Array.isArray(value)) {
      return value.map((item) => this.resolve(item)).filter((item) => item !== NO_VALUE);
    }
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [key] = keys;
      const argument = value[key];
      switch (key) {
        case 'Ref':
          return this.ref(argument);
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(argument) ? argument : argument.split('.');
          return this.getAtt(id, attribute);
        }
        case 'Fn::Sub':
          return Array.isArray(argument) ? this.sub(argument[0], argument[1]) : this.sub(argument);
        case 'Fn::Join':
          return this.resolve(argument[1]).join(argument[0]);
        case 'Fn::If':
          return this.resolve(this.condition(argument[0]) ? argument[1] : argument[2]);
        case 'Fn::Equals':
          return String(this.resolve(argument[0])) === String(this.resolve(argument[1]));
        case 'Fn::Not':
          return !this.resolve(argument[0]);
        case 'Fn::And':
          return argument.every((item) => this.resolve(item));
        case 'Fn::Or':
          return argument.some((item) => this.resolve(item));
        case 'Condition':
          return this.condition(argument);
        case 'Fn::Select':
          return this.resolve(argument[1])[Number(this.resolve(argument[0]))];
        case 'Fn::Split':
          return String(this.resolve(argument[1])).split(argument[0]);
        default:
      }
    }
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      const resolved = this.resolve(item);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  }

  /** The packaged stage: the functions' SQS_PUSH_STAGE. */
  stage() {
    for (const resource of Object.values(this.resources)) {
      const stage = resource.Type === 'AWS::Lambda::Function' && resource.Properties?.Environment?.Variables?.SQS_PUSH_STAGE;
      if (typeof stage === 'string') return stage;
    }
    throw new Error('no function of the template says its SQS_PUSH_STAGE');
  }

  /** Each Lambda function: { name (as the binaries name it), functionName, roleId, policies }. */
  functions() {
    const prefix = `sqs-push-${this.stage()}-`;
    const out = [];
    for (const [id, resource] of Object.entries(this.resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const functionName = this.name(id, 'FunctionName');
      const roleArn = this.resolve(resource.Properties.Role);
      const roleId = Object.keys(this.resources).find(
        (candidate) => this.resources[candidate].Type === 'AWS::IAM::Role' && this.getAtt(candidate, 'Arn') === roleArn,
      );
      if (!roleId) throw new Error(`${id}: its role ${roleArn} is not a role of this template`);
      out.push({ name: functionName.slice(prefix.length), functionName, roleId, policies: this.rolePolicies(roleId) });
    }
    return out;
  }

  /** A role's inline policies, resolved: [{ name, policy }]. */
  rolePolicies(roleId) {
    const role = this.resources[roleId];
    if (!role || role.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is not a role of this template`);
    if ((role.Properties.ManagedPolicyArns || []).length) {
      throw new Error(`${roleId} has managed policies, which this check cannot read`);
    }
    return (role.Properties.Policies || []).map((policy) => ({
      name: policy.PolicyName,
      policy: this.resolve(policy.PolicyDocument),
    }));
  }

  /** The resource policy of a queue ARN, if the template gives it one. */
  queuePolicy(queueArn) {
    for (const [id, resource] of Object.entries(this.resources)) {
      if (resource.Type !== 'AWS::SQS::QueuePolicy' || !this.exists(id)) continue;
      const urls = this.resolve(resource.Properties.Queues);
      const names = urls.map((url) => url.split('/').pop());
      if (names.includes(queueArn.split(':').pop())) return this.resolve(resource.Properties.PolicyDocument);
    }
    return undefined;
  }
}
