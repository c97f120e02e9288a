<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Flat record file: runs of detail records between head and sum records. -->
  <xsl:template match="/meldungen">
    <laeufe>
      <xsl:for-each-group select="satz" group-adjacent="@typ">
        <lauf typ="{current-grouping-key()}" n="{count(current-group())}">
          <xsl:value-of select="current-group()/@az" separator=" "/>
        </lauf>
      </xsl:for-each-group>
      <xsl:for-each-group select="satz" group-adjacent="@typ = 'D'">
        <xsl:if test="current-grouping-key()">
          <block von="{current-group()[1]/@az}" bis="{current-group()[last()]/@az}"/>
        </xsl:if>
      </xsl:for-each-group>
    </laeufe>
  </xsl:template>
</xsl:stylesheet>
