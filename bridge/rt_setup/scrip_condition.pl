# Rollout bridge scrip condition: applies to changes of the RolloutProgress custom field.
# (Values set while a ticket is created make no CustomField transaction: the bridge's
# reconciliation picks those up.)
my $txn = $self->TransactionObj;
return 0 unless $txn->Type eq 'CustomField';
my $cf = RT::CustomField->new( RT->SystemUser );
$cf->LoadByName(
    Name          => 'RolloutProgress',
    LookupType    => RT::Ticket->CustomFieldLookupType,
    ObjectId      => $self->TicketObj->Queue,
    IncludeGlobal => 1,
);
return 0 unless $cf->id;
return ( $txn->Field || 0 ) == $cf->id ? 1 : 0;
