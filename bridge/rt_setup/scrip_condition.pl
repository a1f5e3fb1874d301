# Rollout bridge scrip condition: applies to changes of the custom fields the bridge follows
# (RolloutProgress, EarlyAdopters, StageRollout Report, EmergencyRelease) and of the ticket's
# status (resolved, rejected, deleted or reopened by hand).
# (Values set while a ticket is created make no CustomField transaction: the bridge's
# reconciliation picks those up.)
my $txn = $self->TransactionObj;
return 1 if $txn->Type eq 'Status';
return 0 unless $txn->Type eq 'CustomField';
my %followed = map { $_ => 1 }
    ( 'RolloutProgress', 'EarlyAdopters', 'StageRollout Report', 'EmergencyRelease' );
my $cf = RT::CustomField->new( RT->SystemUser );
$cf->Load( $txn->Field || 0 );
return 0 unless $cf->id;
return $followed{ $cf->Name } ? 1 : 0;
